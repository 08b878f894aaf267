#!/usr/bin/env python3
"""SER baseline: encoder -> mean pooling -> linear.

Bansal et al., "On the Efficacy and Noise-Robustness of Jointly Learned Speech
Emotion and Automatic Speech Recognition", Interspeech 2023, arXiv:2305.12540,
section 3.1.

The model of the upstream SpeechBrain IEMOCAP wav2vec2 recipe, one fold of a CV
scheme (upstream's ``recipes/IEMOCAP/emotion_recognition/train_with_wav2vec2.py``).
The encoder is chosen in YAML:

> python train_ser.py hparams/ser_w2v2.yaml --data_folder=/path/to/IEMOCAP_full_release
> python train_ser.py hparams/ser_crnn.yaml --data_folder=... --pretrained_ctc_folder=...

One run trains and tests one fold (``--fold_scheme`` session5 / speaker10 / random5,
``--fold`` from 1). All folds, with a summary: ``python -m speechbrain_ext.fold_runner
recipes/joint_asr_ser/train_ser.py hparams/ser_w2v2.yaml --folds speaker10 --data_folder=...``.
The model is selected on the validation set of the fold, never on its test set.

Noise (MUSAN): a YAML with ``wav_augment`` trains on noise (``ser_crnn_noisy.yaml``);
``test_conditions`` lists the conditions of the fixed test matrix to evaluate on
(``[clean]``, or up to all 7 with ``--musan_folder``); predictions then carry a
``condition`` field and the fold runner reports one number per condition.
"""

import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

from data_prep.fold_data import emotion_datasets, prepare_fold_data
from recipe_helpers import load_pretrained, train_loader_kwargs  # this folder
from speechbrain_ext.distributed import DDPBrain
from speechbrain_ext.evaluation import emotion_posteriors, kept_checkpoints, test_on_conditions
from speechbrain_ext.nnet.logmel_crnn import encoder_frame_lengths


class EmotionBrain(DDPBrain):
    """Utterance-level emotion classifier on top of a frame-level encoder."""

    def compute_forward(self, batch, stage):
        """wav -> (augment, training only) -> encoder frames -> mean over valid frames ->
        classifier scores (logits; cosines for ECAPA-TDNN)."""
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        if stage == sb.Stage.TRAIN and hasattr(self.hparams, "wav_augment"):
            wavs, lens = self.hparams.wav_augment(wavs, lens)
        frames = self.modules.encoder(wavs, lens)
        # The encoder's own frame count: pooling reads round(lens * frames) frames.
        lens = encoder_frame_lengths(self.modules.encoder, lens, wavs.shape[1])
        pooled = self.hparams.mean_pooling(frames, lens).squeeze(1)
        return self.modules.classifier(pooled).flatten(1)  # ECAPA's: (batch, 1, n)

    def compute_objectives(self, scores, batch, stage):
        """Loss on the scores (softmax NLL, or upstream ECAPA's angular margin);
        validation/test error; one prediction row per test utterance."""
        emo, _ = batch.emo_encoded  # (batch, 1)
        if stage == sb.Stage.TRAIN and hasattr(self.hparams, "wav_augment"):
            emo = self.hparams.wav_augment.replicate_labels(emo)  # it may add copies
        loss = self.hparams.compute_cost(scores, emo)
        predictions = self.hparams.log_softmax(scores)
        emo = emo.squeeze(1)
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

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        """A per-batch learning-rate schedule (upstream ECAPA's cyclic one) steps here."""
        if hasattr(self.hparams.lr_annealing, "on_batch_end"):
            self.hparams.lr_annealing.on_batch_end(self.optimizer)

    def on_stage_start(self, stage, epoch=None):
        if stage != sb.Stage.TRAIN:
            self.error_metrics = self.hparams.error_stats()
        self.test_rows = []

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """After validation: anneal, log, keep the checkpoint to test; after a test: log."""
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss
            return
        stats = {"loss": stage_loss, "error_rate": self.error_metrics.summarize("average")}
        if stage == sb.Stage.VALID:
            old_lr, new_lr = self.hparams.lr_annealing(stats["error_rate"])
            sb.nnet.schedulers.update_learning_rate(self.optimizer, new_lr)
            rates = {"lr": old_lr}
            if self.encoder_optimizer is not None:
                old_lr, new_lr = self.hparams.lr_annealing_encoder(stats["error_rate"])
                sb.nnet.schedulers.update_learning_rate(self.encoder_optimizer, new_lr)
                rates["lr_encoder"] = old_lr
            self.hparams.train_logger.log_stats(
                {"epoch": epoch, **rates}, train_stats={"loss": self.train_loss},
                valid_stats=stats)
            self.checkpointer.save_and_keep_only(meta=dict(stats, epoch=epoch),
                                                 **kept_checkpoints(self.hparams))
        else:
            self.hparams.train_logger.log_stats(
                {"Epoch loaded": self.hparams.epoch_counter.current,
                 "condition": self.test_condition}, test_stats=stats)

    def init_optimizers(self):
        """The pre-trained modules (``pretrained_modules``: the encoder) train with
        ``encoder_opt_class``, the new layers with ``opt_class``; frozen weights get
        no optimizer."""
        pretrained = self.hparams.pretrained_modules
        groups = {"model": [], "encoder": []}
        for name, module in self.modules.items():
            key = "encoder" if name in pretrained else "model"
            groups[key] += [p for p in module.parameters() if p.requires_grad]
        self.optimizer = self.hparams.opt_class(groups["model"])
        self.optimizers_dict = {"model": self.optimizer}
        self.encoder_optimizer = None
        if groups["encoder"]:
            self.encoder_optimizer = self.hparams.encoder_opt_class(groups["encoder"])
            self.optimizers_dict["encoder"] = self.encoder_optimizer
        if self.checkpointer is not None:
            for name, optimizer in self.optimizers_dict.items():
                self.checkpointer.add_recoverable(f"{name}_optimizer", optimizer)


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
    load_pretrained(hparams)  # CPU stand-in: encoder (+ CTC head) pre-trained on LibriSpeech

    brain = EmotionBrain(
        modules=hparams["modules"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    brain.label_encoder = label_encoder
    brain.fit(
        brain.hparams.epoch_counter,
        datasets["train"],
        datasets["valid"],
        train_loader_kwargs=train_loader_kwargs(hparams, datasets["train"], brain),
        valid_loader_kwargs=hparams["test_dataloader_options"],
    )
    # Best epoch on the validation set (select_on_valid), then the test fold per condition.
    test_on_conditions(brain, datasets, test_manifests)
