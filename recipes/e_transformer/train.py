#!/usr/bin/env python3
"""Residual-BLSTM + time pooling + E-transformer for SER on IEMOCAP, and its 7 ablations.

D. Hu, X. Hu, X. Xu, "Multiple Enhancements to LSTM for Learning Emotion-Salient
Features in Speech Emotion Recognition", Proc. Interspeech 2022. The YAML names the
encoder (a chain of modules from ``speechbrain_ext/nnet/etransformer.py``); the eight
systems of the paper's Table 2 are eight YAMLs of this one script:

> python train.py hparams/e_transformer.yaml --data_folder=/path/to/IEMOCAP_full_release
> python train.py hparams/base1.yaml ...    # ... base7.yaml

Log-mel features are computed once per utterance and cached on disk
(``feature_cache_folder``, keyed by the feature settings), so an epoch costs the
model alone. A YAML with a ``wav_augment`` (e.g. MUSAN noise) needs the waveform
in training: features are then computed on the fly, in every stage, and the cache
is not used. One run trains and tests one fold (``--fold_scheme`` random5 as the
paper, or session5; ``--fold=K``); all folds: ``python -m speechbrain_ext.fold_runner
recipes/e_transformer/train.py recipes/e_transformer/hparams/e_transformer.yaml
--folds random5 --data_folder=...``.
"""

import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

from data_prep.fold_data import emotion_datasets, prepare_fold_data
from speechbrain_ext.distributed import DDPBrain
from speechbrain_ext.evaluation import emotion_posteriors, kept_checkpoints, test_on_conditions


class ETransformerBrain(DDPBrain):
    """Log-mel -> normalise, cut/pad to 4 s -> encoder -> statistics pooling -> linear."""

    def compute_forward(self, batch, stage):
        """Cached raw log-mel (or wav -> augment -> log-mel) -> log-probabilities."""
        batch = batch.to(self.device)
        augment = getattr(self.hparams, "wav_augment", None) if stage == sb.Stage.TRAIN else None
        feats, feat_lens = self.modules.features.batch_features(batch, wav_augment=augment)
        frames = self.modules.encoder(feats)
        # Time pooling halves the frames, not the relative lengths: feat_lens still hold.
        pooled = self.modules.pooling(frames, feat_lens).squeeze(1)
        return self.hparams.log_softmax(self.modules.classifier(pooled))

    def compute_objectives(self, predictions, batch, stage):
        """Cross-entropy (NLL of log-softmax); validation/test error; test rows."""
        emo, _ = batch.emo_encoded
        emo = emo.squeeze(1)
        if stage == sb.Stage.TRAIN and hasattr(self.hparams, "wav_augment"):
            emo = self.hparams.wav_augment.replicate_labels(emo)  # it may add copies
        loss = self.hparams.compute_cost(predictions, emo)
        if stage != sb.Stage.TRAIN:
            self.error_metrics.append(batch.id, predictions, emo)
        if stage == sb.Stage.TEST:
            predicted = self.label_encoder.decode_ndim(predictions.argmax(dim=-1).cpu())
            posteriors = emotion_posteriors(predictions, self.label_encoder)
            for uid, spk, true, pred, post in zip(batch.id, batch.speaker, batch.emo, predicted,
                                                  posteriors):
                self.test_rows.append({"id": uid, "speaker": spk, "emo": true, "emo_pred": pred,
                                       "emo_posteriors": post, "condition": self.test_condition})
        return loss

    def on_stage_start(self, stage, epoch=None):
        if stage != sb.Stage.TRAIN:
            self.error_metrics = self.hparams.error_stats()
        self.test_rows = []

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Log and checkpoint after validation, log each tested condition."""
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss
            return
        stats = {"loss": stage_loss, "error_rate": self.error_metrics.summarize("average")}
        if stage == sb.Stage.VALID:
            self.hparams.train_logger.log_stats(
                {"epoch": epoch}, train_stats={"loss": self.train_loss}, valid_stats=stats)
            # Keeps the checkpoint the test will use (best validation, or last epoch).
            self.checkpointer.save_and_keep_only(meta=dict(stats, epoch=epoch),
                                                 **kept_checkpoints(self.hparams))
        else:
            self.hparams.train_logger.log_stats(
                {"Epoch loaded": self.hparams.epoch_counter.current,
                 "condition": self.test_condition}, test_stats=stats)


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
    # Features from the cache (computed once, read every epoch), unless a wav_augment
    # needs the waveform or the YAML says use_feature_cache: False.
    use_cache = hparams["use_feature_cache"] and "wav_augment" not in hparams
    cache = hparams["feature_cache"] if use_cache else None
    datasets, label_encoder = emotion_datasets(hparams, test_manifests, feature_cache=cache)

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
    test_on_conditions(brain, datasets, test_manifests)
