"""Inference interface of this recipe's models, for their exported folders.

``python -m speechbrain_ext.export <fold output_folder> <model folder>`` copies this
file into the model folder. The forward of ``train.py`` (features -> encoder ->
pooling -> classifier) is the shared ``EmotionClassifier``'s, so the folder also
loads without this file:

>>> from speechbrain_ext.inference import EmotionClassifier  # doctest: +SKIP
>>> model = EmotionClassifier.from_hparams(source="models/cornn")  # doctest: +SKIP
>>> log_probs, score, index, label = model.classify_file("turn.wav")  # doctest: +SKIP

``EXPORTS`` tells the exporter, for each training script, the interface class, the
inference name of each module with its key in the training YAML, and the
hyperparameters the class reads.
"""

from speechbrain_ext.inference import EmotionClassifier

__all__ = ["EmotionClassifier"]

EXPORTS = {
    "train.py": {
        "interface": "EmotionClassifier",
        "modules": {name: name for name in ["features", "encoder", "pooling", "classifier"]},
        "hparams": ["log_softmax"],
    },
}
