#!/usr/bin/env python3
"""CoRNN: 3-D log-mel -> BiLSTM -> Conformer -> FC -> softmax, on IEMOCAP.

X. Huang, C. Sun, J. Yang, X. Hou, "Speech Emotion Recognition Based on Recurrent
Neural Networks with Conformer for Emotional Speech Synthesis", SPNCE 2023, Springer
LNICST, 2025, doi:10.1007/978-3-031-73699-5_19.

The YAML names the feature step, the encoder (a chain of modules), the pooling and
the classifier, so the ablations and the ACRNN baseline are YAMLs of this one script:

> python train.py hparams/cornn.yaml --data_folder=/path/to/IEMOCAP_full_release
> python train.py hparams/wo_conformer.yaml ...    # BiLSTM only
> python train.py hparams/wo_bilstm.yaml ...       # Conformer only
> python train.py hparams/acrnn.yaml ...           # ACRNN baseline (Chen et al. 2018)

One run trains and tests one fold (``--fold_scheme=speaker10 --fold=K``); all ten:
``python -m speechbrain_ext.fold_runner recipes/cornn/train.py
recipes/cornn/hparams/cornn.yaml --folds speaker10 --data_folder=...``. The model
tested is the one of the last epoch, as in the paper, or (``select_on_valid: True``)
the epoch with the lowest validation error; never a choice made on the test fold.
A ``wav_augment`` in the YAML (e.g. MUSAN noise) is applied to the training waveforms
before the features.
"""

import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

from data_prep.fold_data import emotion_datasets, prepare_fold_data
from speechbrain_ext.distributed import DDPBrain
from speechbrain_ext.evaluation import emotion_posteriors, kept_checkpoints, test_on_conditions


class CoRNNBrain(DDPBrain):
    """Fixed-length 3-D log-mel -> encoder -> pooling over the utterance -> classifier."""

    def compute_forward(self, batch, stage):
        """Cached raw log-mel (or wav -> augment -> log-mel) -> encoder -> pooled -> log-probs."""
        batch = batch.to(self.device)
        augment = getattr(self.hparams, "wav_augment", None) if stage == sb.Stage.TRAIN else None
        feats, feat_lens = self.modules.features.batch_features(batch, wav_augment=augment)
        frames = self.modules.encoder(feats)
        # Pool over the utterance's own frames only: padding never reaches the output.
        pooled = self.modules.pooling(frames, feat_lens).squeeze(1)
        return self.hparams.log_softmax(self.modules.classifier(pooled))

    def compute_objectives(self, predictions, batch, stage):
        """NLL loss; validation/test error; one prediction row per test utterance."""
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
            # Keeps the checkpoint the test will use (last epoch, or best validation).
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
    test_on_conditions(brain, datasets, test_manifests)
