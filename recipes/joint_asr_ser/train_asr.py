#!/usr/bin/env python3
"""ASR baseline (Bansal et al. 2023, section 3.1): encoder + character CTC, one fold.

The same encoder, CTC head, speed perturbation, data and folds as ``train_joint.py``,
without the SER head: the reference point for the joint model's WER.

> python train_asr.py hparams/asr_w2v2.yaml --data_folder=/path/to/IEMOCAP_full_release
> python train_asr.py hparams/asr_crnn.yaml --data_folder=... --pretrained_ctc_folder=...

Test rows carry ``words`` / ``words_pred`` and the true ``emo`` (for WER by emotion),
no ``emo_pred``. The model is selected on the fold's validation WER.
"""

import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

from speechbrain_ext.ctc import character_encoder
from speechbrain_ext.emotion_brain import ConditionTestLoopMixin, EncoderFineTuningMixin
from speechbrain_ext.recipe_data import (emotion_datasets, load_pretrained, prepare_fold_data,
                                         train_loader_kwargs)


class ASRBrain(EncoderFineTuningMixin, ConditionTestLoopMixin, sb.Brain):
    """Encoder -> linear -> CTC; greedy transcripts."""

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        if stage == sb.Stage.TRAIN and hasattr(self.hparams, "wav_augment"):
            wavs, lens = self.hparams.wav_augment(wavs, lens)
        frames = self.modules.encoder(wavs, lens)
        return self.hparams.log_softmax(self.modules.ctc_lin(frames)), lens

    def compute_objectives(self, predictions, batch, stage):
        log_probs, lens = predictions
        tokens, token_lens = batch.tokens
        if stage == sb.Stage.TRAIN and hasattr(self.hparams, "wav_augment"):
            tokens, token_lens = self.hparams.wav_augment.replicate_multiple_labels(
                tokens, token_lens)  # an Augmenter may add copies of the batch
        loss = self.hparams.ctc_cost(log_probs, tokens, lens, token_lens)
        if stage != sb.Stage.TRAIN:
            hyps = self.hparams.ctc_decoder(log_probs, lens, self.ctc_encoder)
            self.wer_metric.append(batch.id, [h.split() for h in hyps],
                                   [w.split() for w in batch.words])
        if stage == sb.Stage.TEST:
            for uid, spk, emo, words, hyp in zip(batch.id, batch.speaker, batch.emo,
                                                 batch.words, hyps):
                self.test_rows.append({"id": uid, "speaker": spk, "emo": emo, "words": words,
                                       "words_pred": hyp, "condition": self.test_condition})
        return loss

    def on_stage_start(self, stage, epoch=None):
        self.wer_metric = self.hparams.wer_stats()
        self.test_rows = []

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss
            return
        wer = self.wer_metric.summarize("error_rate")
        stats = {"loss": stage_loss, "WER": wer, "error_rate": wer / 100}
        self.log_and_checkpoint(stage, stats, epoch)


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
    ctc_encoder = character_encoder()
    datasets, _ = emotion_datasets(hparams, test_manifests, ctc_encoder=ctc_encoder)
    load_pretrained(hparams)  # CPU stand-in: encoder (+ CTC head) pre-trained on LibriSpeech

    brain = ASRBrain(
        modules=hparams["modules"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    brain.ctc_encoder = ctc_encoder
    brain.fit(
        brain.hparams.epoch_counter,
        datasets["train"],
        datasets["valid"],
        train_loader_kwargs=train_loader_kwargs(hparams, datasets["train"], brain),
        valid_loader_kwargs=hparams["test_dataloader_options"],
    )
    brain.test_conditions(datasets, test_manifests)
