#!/usr/bin/env python3
"""Joint ASR + SER, one fold of a CV scheme.

L. Bansal, S. P. Dubagunta, M. Chetlur, P. Jagtap, A. Ganapathiraju, "On the Efficacy
and Noise-Robustness of Jointly Learned Speech Emotion and Automatic Speech
Recognition", Proc. Interspeech 2023, arXiv:2305.12540 (section 3.2).

One encoder (wav2vec2 in ``joint_w2v2.yaml``) feeds two heads:

    wav -> encoder -> frames -> CTC head -> character log-probs -> greedy transcript
                          |                                             |
                          mean pooling                         text encoder (BERT), token mean
                          |                                             |
                      acoustic ResidualMLP                   linguistic ResidualMLP
                          +---------------- concatenation --------------+
                                                  |
                                        emotion classifier

Loss ``ser_weight * L_SER + (1 - ser_weight) * L_CTC`` (the paper's alpha = 0.1).
The SER head reads the CTC transcript of the utterance; in evaluation always the
hypothesis, never the reference (``ser_text_in_training`` only concerns training).

> python train_joint.py hparams/joint_w2v2.yaml --data_folder=/path/to/IEMOCAP_full_release
> python train_joint.py hparams/joint_crnn.yaml --data_folder=... --pretrained_ctc_folder=...

All folds and the noise study: ``study.py`` (README). The model is selected on the
validation set of the fold, never on its test set. WER counts the turns whose
reference has a word (validation and test alike); a turn whose transcript
normalises to nothing trains CTC on an empty target and counts for SER.
"""

import sys

import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml

from data_prep.fold_data import emotion_datasets, prepare_fold_data
from recipe_helpers import load_pretrained, train_loader_kwargs  # this folder
from speechbrain_ext.ctc import character_encoder
from speechbrain_ext.distributed import DDPBrain
from speechbrain_ext.evaluation import emotion_posteriors, kept_checkpoints, test_on_conditions
from speechbrain_ext.nnet.logmel_crnn import encoder_frame_lengths


class JointASRSERBrain(DDPBrain):
    """Shared encoder, CTC head, and an SER head fusing acoustics with the transcript."""

    def compute_forward(self, batch, stage):
        """wav -> encoder -> CTC log-probs, transcript, emotion log-probs."""
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        if stage == sb.Stage.TRAIN and hasattr(self.hparams, "wav_augment"):
            wavs, lens = self.hparams.wav_augment(wavs, lens)
        frames = self.modules.encoder(wavs, lens)
        # The encoder's own frame count: the CTC loss, decoding and pooling read
        # round(lens * frames) frames, one too many or too few with the wave's lens.
        lens = encoder_frame_lengths(self.modules.encoder, lens, wavs.shape[1])
        ctc_log_probs = self.hparams.log_softmax(self.modules.ctc_head(frames))
        hypotheses = self.hparams.ctc_decoder(ctc_log_probs, lens, self.ctc_encoder)

        # Evaluation always reads the ASR output: the reference is only ever used in
        # training, and only when the YAML asks for it.
        texts = hypotheses
        if stage == sb.Stage.TRAIN and self.hparams.ser_text_in_training == "reference":
            texts = list(batch.words)
            if len(texts) != len(wavs):  # an Augmenter with concat_original adds copies
                raise ValueError("ser_text_in_training: reference needs a wav_augment that "
                                 "keeps the batch size (concat_original: False)")
        if self.hparams.freeze_text_encoder:
            self.modules.text_encoder.eval()  # Brain.fit sets train(): no dropout when frozen
        tokens, token_states = self.modules.text_encoder(texts, return_tokens=True)
        # Both poolings skip padding: an utterance's emotion never depends on its batch.
        linguistic = self.hparams.token_pooling(token_states, tokens["attention_mask"])
        acoustic = self.hparams.mean_pooling(frames, lens).squeeze(1)
        fused = torch.cat([self.modules.acoustic_mlp(acoustic),
                           self.modules.linguistic_mlp(linguistic)], dim=-1)
        emo_log_probs = self.hparams.log_softmax(self.modules.emotion_classifier(fused))
        return {"ctc": ctc_log_probs, "lens": lens, "hypotheses": hypotheses,
                "emo": emo_log_probs, "ser_texts": texts}

    def compute_objectives(self, predictions, batch, stage):
        """``ser_weight * NLL + (1 - ser_weight) * CTC``; WER, SER error; test rows."""
        emo, _ = batch.emo_encoded
        emo = emo.squeeze(1)
        tokens, token_lens = batch.tokens
        if stage == sb.Stage.TRAIN and hasattr(self.hparams, "wav_augment"):
            emo, tokens, token_lens = self.hparams.wav_augment.replicate_multiple_labels(
                emo, tokens, token_lens)  # an Augmenter may add copies of the batch
        loss_ser = self.hparams.ser_cost(predictions["emo"], emo)
        loss_asr = self.hparams.ctc_cost(predictions["ctc"], tokens, predictions["lens"],
                                         token_lens)
        loss = self.hparams.ser_weight * loss_ser + (1 - self.hparams.ser_weight) * loss_asr
        if stage != sb.Stage.TRAIN:
            hyps = predictions["hypotheses"]
            scored = [i for i, words in enumerate(batch.words) if words]  # WER: turns with words
            self.wer_metric.append([batch.id[i] for i in scored],
                                   [hyps[i].split() for i in scored],
                                   [batch.words[i].split() for i in scored])
            self.ser_metric.append(batch.id, predictions["emo"], emo)
        if stage == sb.Stage.TEST:
            emo_pred = self.label_encoder.decode_ndim(predictions["emo"].argmax(dim=-1).cpu())
            posteriors = emotion_posteriors(predictions["emo"], self.label_encoder)
            for uid, spk, true, pred, post, words, hyp in zip(
                    batch.id, batch.speaker, batch.emo, emo_pred, posteriors, batch.words, hyps):
                self.test_rows.append({"id": uid, "speaker": spk, "emo": true, "emo_pred": pred,
                                       "emo_posteriors": post,
                                       "words": words, "words_pred": hyp,
                                       "condition": self.test_condition})
        return loss

    def on_stage_start(self, stage, epoch=None):
        self.wer_metric = self.hparams.wer_stats()
        self.ser_metric = self.hparams.ser_stats()
        self.test_rows = []

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """After validation: anneal, log, keep the checkpoint to test; after a test: log."""
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss
            return
        wer = self.wer_metric.summarize("error_rate")
        ser_error = self.ser_metric.summarize("average")
        # The selection metric weighs the two primary tasks equally.
        stats = {"loss": stage_loss, "WER": wer, "SER_error": ser_error,
                 "error_rate": (wer / 100 + ser_error) / 2}
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
        """The pre-trained modules (``pretrained_modules``: encoder, text encoder) train
        with ``encoder_opt_class``, the new heads with ``opt_class``; frozen weights
        get no optimizer."""
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
    datasets, label_encoder = emotion_datasets(hparams, test_manifests, ctc_encoder=ctc_encoder)
    load_pretrained(hparams)  # CPU stand-in: encoder (+ CTC head) pre-trained on LibriSpeech
    if not hparams["freeze_text_encoder"]:
        hparams["checkpointer"].add_recoverable("text_encoder", hparams["text_encoder"])

    brain = JointASRSERBrain(
        modules=hparams["modules"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    brain.label_encoder = label_encoder
    brain.ctc_encoder = ctc_encoder
    brain.fit(
        brain.hparams.epoch_counter,
        datasets["train"],
        datasets["valid"],
        train_loader_kwargs=train_loader_kwargs(hparams, datasets["train"], brain),
        valid_loader_kwargs=hparams["test_dataloader_options"],
    )
    test_on_conditions(brain, datasets, test_manifests)
