#!/usr/bin/env python3
"""Residual-BLSTM + time pooling + E-transformer for SER on IEMOCAP, and its 7 ablations.

Paper: ``shared/papers/residual_blstm_etransformer.txt``. The YAML names the encoder
(a chain of modules from ``speechbrain_ext/nnet/etransformer.py``); the eight
systems of the paper's Table 2 are eight YAMLs of this one script:

> python train.py hparams/e_transformer.yaml --data_folder=/path/to/IEMOCAP_full_release
> python train.py hparams/base1.yaml ...    # ... base7.yaml

Log-mel features are computed once per utterance and cached on disk
(``feature_cache_folder``, keyed by the feature settings), so an epoch costs the
model alone. One run trains and tests one fold (``--fold_scheme`` random5 as the
paper, or session5; ``--fold=K``); all folds: ``python -m speechbrain_ext.cv
recipes/e_transformer/train.py recipes/e_transformer/hparams/e_transformer.yaml
--folds random5 --data_folder=...``.
"""

import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

from speechbrain_ext.emotion_brain import EmotionClassifierBrain
from speechbrain_ext.recipe_data import emotion_datasets, prepare_fold_data


class ETransformerBrain(EmotionClassifierBrain):
    """Cached log-mel -> normalise, cut/pad to 4 s -> encoder -> statistics pooling -> linear.

    Loss, validation, checkpoint selection and test rows: ``EmotionClassifierBrain``.
    """

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        raw, raw_lens = batch.feats
        feats, feat_lens = self.modules.features.from_features(raw, raw_lens)
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
    datasets, label_encoder = emotion_datasets(hparams, test_manifests,
                                               feature_cache=hparams["feature_cache"])

    brain = ETransformerBrain(
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
