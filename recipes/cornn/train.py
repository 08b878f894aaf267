#!/usr/bin/env python3
"""CoRNN (Huang et al.): 3-D log-mel -> BiLSTM -> Conformer -> FC -> softmax, on IEMOCAP.

Paper: ``shared/papers/cornn_bilstm_conformer.txt``. The YAML names the feature
step, the encoder (a chain of modules), the pooling and the classifier, so the
ablations and the ACRNN baseline are YAMLs of this one script:

> python train.py hparams/cornn.yaml --data_folder=/path/to/IEMOCAP_full_release
> python train.py hparams/wo_conformer.yaml ...    # BiLSTM only
> python train.py hparams/wo_bilstm.yaml ...       # Conformer only
> python train.py hparams/acrnn.yaml ...           # ACRNN baseline (Chen et al. 2018)

One run trains and tests one fold (``--fold_scheme=speaker10 --fold=K``); all ten:
``python -m speechbrain_ext.cv recipes/cornn/train.py recipes/cornn/hparams/cornn.yaml
--folds speaker10 --data_folder=...``. The model tested is the one of the last
epoch, as in the paper, or (``select_on_valid: True``) the epoch with the lowest
validation error; never a choice made on the test fold.
"""

import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

from speechbrain_ext.emotion_brain import EmotionClassifierBrain
from speechbrain_ext.recipe_data import emotion_datasets, prepare_fold_data


class CoRNNBrain(EmotionClassifierBrain):
    """Fixed-length 3-D log-mel -> encoder -> pooling over the utterance -> classifier.

    Loss, validation, checkpoint selection and test rows: ``EmotionClassifierBrain``.
    """

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        wavs, wav_lens = batch.sig
        feats, feat_lens = self.modules.features(wavs, wav_lens)
        frames = self.modules.encoder(feats)
        pooled = self.modules.pooling(frames, feat_lens).squeeze(1)
        return self.hparams.log_softmax(self.modules.classifier(pooled))


if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file) as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )

    test_manifests = prepare_fold_data(hparams)  # prep, fold, MUSAN, test matrix
    datasets, label_encoder = emotion_datasets(hparams, test_manifests)

    brain = CoRNNBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    brain.label_encoder = label_encoder
    brain.fit(
        brain.hparams.epoch_counter,
        datasets["train"],
        datasets["valid"],
        train_loader_kwargs=hparams["train_dataloader_options"],
        valid_loader_kwargs=hparams["test_dataloader_options"],
    )
    brain.test_conditions(datasets, test_manifests)
