#!/usr/bin/env python3
"""ASR baseline: encoder + character CTC, one fold.

Bansal et al., "On the Efficacy and Noise-Robustness of Jointly Learned Speech
Emotion and Automatic Speech Recognition", Interspeech 2023, arXiv:2305.12540,
section 3.1: upstream SpeechBrain's LibriSpeech wav2vec2 CTC recipe as it is.

The same encoder, CTC head, speed perturbation, data and folds as ``train_joint.py``,
without the SER head: the reference point for the joint model's WER.

> python train_asr.py hparams/asr_w2v2.yaml --data_folder=/path/to/IEMOCAP_full_release
> python train_asr.py hparams/asr_crnn.yaml --data_folder=... --pretrained_ctc_folder=...

Test rows carry ``words`` / ``words_pred`` and the true ``emo`` (for WER by emotion),
no ``emo_pred``. The model is selected on the fold's validation WER. WER counts
the turns whose reference has a word (validation and test alike).
"""

import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

from data_prep.fold_data import emotion_datasets, prepare_fold_data
from recipe_helpers import load_pretrained, train_loader_kwargs  # this folder
from speechbrain_ext.ctc import character_encoder
from speechbrain_ext.distributed import DDPBrain
from speechbrain_ext.evaluation import kept_checkpoints, test_on_conditions
from speechbrain_ext.nnet.logmel_crnn import encoder_frame_lengths


class ASRBrain(DDPBrain):
    """Encoder -> CTC head (w2v2: DNN + linear, as upstream) -> CTC; greedy transcripts."""

    def compute_forward(self, batch, stage):
        """wav -> (augment, training only) -> encoder -> CTC log-probs."""
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        if stage == sb.Stage.TRAIN and hasattr(self.hparams, "wav_augment"):
            wavs, lens = self.hparams.wav_augment(wavs, lens)
        frames = self.modules.encoder(wavs, lens)
        # The encoder's own frame count: the CTC loss and decoding read
        # round(lens * frames) frames, one too many or too few with the wave's lens.
        lens = encoder_frame_lengths(self.modules.encoder, lens, wavs.shape[1])
        return self.hparams.log_softmax(self.modules.ctc_head(frames)), lens

    def compute_objectives(self, predictions, batch, stage):
        """CTC loss; WER; test rows."""
        log_probs, lens = predictions
        tokens, token_lens = batch.tokens
        if stage == sb.Stage.TRAIN and hasattr(self.hparams, "wav_augment"):
            tokens, token_lens = self.hparams.wav_augment.replicate_multiple_labels(
                tokens, token_lens)  # an Augmenter may add copies of the batch
        loss = self.hparams.ctc_cost(log_probs, tokens, lens, token_lens)
        if stage != sb.Stage.TRAIN:
            hyps = self.hparams.ctc_decoder(log_probs, lens, self.ctc_encoder)
            scored = [i for i, words in enumerate(batch.words) if words]  # WER: turns with words
            self.wer_metric.append([batch.id[i] for i in scored],
                                   [hyps[i].split() for i in scored],
                                   [batch.words[i].split() for i in scored])
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
        """After validation: anneal, log, keep the checkpoint to test; after a test: log."""
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss
            return
        wer = self.wer_metric.summarize("error_rate")
        stats = {"loss": stage_loss, "WER": wer, "error_rate": wer / 100}
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
    test_on_conditions(brain, datasets, test_manifests)
