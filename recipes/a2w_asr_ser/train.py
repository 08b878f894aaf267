#!/usr/bin/env python3
"""SER with an acoustic-to-word ASR's decoder states (ASR-SER) and its baselines, one fold.

H. Feng, S. Ueno, T. Kawahara, "End-to-end speech emotion recognition combined with
acoustic-to-word ASR model", Proc. Interspeech 2020 (sections 2, 4 and 5).

    wav -> 40 log-mel, cut at 7.5 s -------------------------> BiLSTM + attention -> M_X
    words -> 300-d word embedding ---------------------------> BiLSTM + attention -> M_W
       or wav -> A2W ASR (pre-trained) -> decoder states s_l -> BiLSTM + attention -> M_W
    [M_X, M_W] -> FC 2048 + ReLU -> softmax over emotions
    (each stream: 2-layer BiLSTM 256, structured self-attention 8 heads x 512 nodes)

The YAML names the ``streams`` (``acoustic``, ``text``, ``asr_states``) and, for
``text``, where the words come from (``text_source``): the reference transcript
(the ground-truth baselines) or the pre-trained ASR's beam-search hypotheses (the
pipeline rows; the ASR stays frozen). With ``asr_states`` (the proposed ASR-SER
model) the A2W model is fine-tuned with ``asr_weight * L_ASR + (1 - asr_weight) *
L_SER`` (the paper: 0.2 / 0.8, both cross-entropy). In evaluation the decoder runs
on its own hypotheses (beam 4, or what ``test_search`` / ``valid_search`` say) and
the SER head reads the states of those hypotheses: it never sees a test turn's
reference. In training the states come from the reference words
(``states_in_training: reference``, teacher forcing: the same pass gives L_ASR) or
from the greedy hypotheses (``hypothesis``).

> python train.py hparams/asr_ser.yaml --data_folder=/path/to/IEMOCAP_full_release \\
>     --pretrained_a2w_folder=results/pretrain_a2w/1993/pretrained

Every row of Tables 1, 3, 4 and 5 over the folds: ``study.py`` (README). The model
is selected on the fold's validation set (lowest SER error), never on its test set.
"""

import os
import sys

import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml

from data_prep.fold_data import emotion_datasets, prepare_fold_data
from speechbrain_ext.distributed import DDPBrain
from speechbrain_ext.evaluation import emotion_posteriors, kept_checkpoints, test_on_conditions
from speechbrain_ext.nnet.a2w import bos_sequences
from speechbrain_ext.words import WordVocabulary

STREAMS = ("acoustic", "text", "asr_states")
A2W_PARTS = ("asr_features", "asr_encoder", "asr_decoder")


class A2WSERBrain(DDPBrain):
    """Optional A2W ASR, one attentive BiLSTM per stream, FC 2048 + ReLU, softmax."""

    def check_streams(self):
        """The YAML's streams and text source are consistent with its modules."""
        streams, has_asr = self.hparams.streams, "asr_encoder" in self.modules
        if not streams or set(streams) - set(STREAMS):
            raise ValueError(f"streams {streams}: choose among {STREAMS}")
        if "text" in streams and self.hparams.text_source not in ("reference", "asr"):
            raise ValueError(f"text_source {self.hparams.text_source!r}: reference or asr")
        if "text" in streams and "asr_states" in streams:
            raise ValueError("text and asr_states: the ASR features replace the words")
        needs_asr = "asr_states" in streams or (
            "text" in streams and self.hparams.text_source == "asr")
        if needs_asr != has_asr:
            raise ValueError(f"streams {streams} {'need' if needs_asr else 'have no use for'} "
                             "the A2W modules (asr_features, asr_encoder, asr_decoder)")
        self.fine_tune_asr = "asr_states" in streams
        if has_asr and not self.fine_tune_asr:  # the pipeline's ASR stays as pre-trained
            for name in A2W_PARTS:
                self.modules[name].requires_grad_(False)
        self.transcripts = {}  # frozen ASR: its hypotheses, computed once per turn

    def compute_forward(self, batch, stage):
        """wav -> emotion log-probs, and with the A2W model its outputs."""
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        out = {}
        vectors = []
        for stream in self.hparams.streams:
            if stream == "acoustic":
                x, x_lens = self.modules.ser_features(wavs, lens)
            elif stream == "text":
                x, x_lens = self.embed_words(self.ser_texts(batch, stage, out))
            else:
                x, x_lens = self.asr_states(batch, stage, out)
            vectors.append(self.modules[f"{stream}_stream"](x, x_lens))
        logits = self.modules.emotion_classifier(torch.cat(vectors, dim=-1))
        out["emo"] = self.hparams.log_softmax(logits)
        return out

    def encode(self, wavs, lens):
        """A2W encoder states and their relative lengths."""
        feats, feat_lens = self.modules.asr_features(wavs, lens)
        return self.modules.asr_encoder(feats, feat_lens), feat_lens

    def asr_states(self, batch, stage, out):
        """Decoder LSTM states s_l for the SER head (teacher-forced on the reference words
        in training, on the decoder's own hypotheses otherwise); ASR logits for L_ASR."""
        wavs, lens = batch.sig
        enc, enc_lens = self.encode(wavs, lens)
        tokens_bos, tokens_lens = batch.tokens_bos
        logits, states = self.modules.asr_decoder(tokens_bos, enc, enc_lens)
        out["asr_log_probs"] = self.hparams.log_softmax(logits)  # for L_ASR and its metric
        if stage == sb.Stage.TRAIN and self.hparams.states_in_training == "reference":
            return states, tokens_lens
        # Test: beam 4; validation (and training on hypotheses): the YAML's valid_search.
        search = self.hparams.test_search if stage == sb.Stage.TEST else self.hparams.valid_search
        hyps, _, _, _ = search(enc, enc_lens)
        out["hypotheses"] = [self.vocab.decode(h) for h in hyps]
        hyp_bos, hyp_lens = bos_sequences(hyps, self.vocab.bos_index, device=enc.device)
        _, states = self.modules.asr_decoder(hyp_bos, enc, enc_lens)
        return states, hyp_lens

    def ser_texts(self, batch, stage, out):
        """The words the text stream reads: the reference, or the frozen ASR's hypotheses
        (in training only if ``text_in_training: asr``)."""
        if self.hparams.text_source == "reference" or (
                stage == sb.Stage.TRAIN and self.hparams.text_in_training == "reference"):
            return list(batch.words)
        key = getattr(self, "test_condition", "clean") if stage == sb.Stage.TEST else "clean"
        missing = [i for i, uid in enumerate(batch.id) if (key, uid) not in self.transcripts]
        if missing:
            for name in A2W_PARTS:  # frozen: no dropout, no normalisation update
                self.modules[name].eval()
            with torch.no_grad():
                wavs, lens = batch.sig
                enc, enc_lens = self.encode(wavs[missing], lens[missing])
                hyps, _, _, _ = self.hparams.test_search(enc, enc_lens)
            for i, hyp in zip(missing, hyps):
                self.transcripts[key, batch.id[i]] = self.vocab.decode(hyp)
        out["hypotheses"] = [self.transcripts[key, uid] for uid in batch.id]
        return out["hypotheses"]

    def embed_words(self, texts):
        """Word strings -> (batch, words, 300) embeddings and relative lengths."""
        ids = [torch.LongTensor(self.vocab.encode(text) or [self.vocab.unk_index])
               for text in texts]  # an empty hypothesis reads as one <unk>
        tokens = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True).to(self.device)
        lens = torch.tensor([len(t) for t in ids], device=self.device) / tokens.shape[1]
        return self.modules.word_embedding(tokens), lens

    def compute_objectives(self, predictions, batch, stage):
        """``asr_weight * L_ASR + (1 - asr_weight) * L_SER`` when the ASR is fine-tuned; metrics."""
        emo = batch.emo_encoded[0].squeeze(1)
        loss = self.hparams.ser_cost(predictions["emo"], emo)
        if self.fine_tune_asr:
            tokens_eos, tokens_eos_lens = batch.tokens_eos
            loss_asr = self.hparams.seq_cost(predictions["asr_log_probs"], tokens_eos,
                                             length=tokens_eos_lens)
            loss = self.hparams.asr_weight * loss_asr + (1 - self.hparams.asr_weight) * loss
        if stage == sb.Stage.TRAIN:
            return loss
        self.ser_metric.append(batch.id, predictions["emo"], emo)
        hyps = predictions.get("hypotheses")
        if hyps is not None:
            self.wer_metric.append(batch.id, [h.split() for h in hyps],
                                   [w.split() for w in batch.words])
        if stage == sb.Stage.TEST:
            emo_pred = self.label_encoder.decode_ndim(predictions["emo"].argmax(dim=-1).cpu())
            posteriors = emotion_posteriors(predictions["emo"], self.label_encoder)
            for i, (uid, spk, true, pred) in enumerate(zip(batch.id, batch.speaker, batch.emo,
                                                           emo_pred)):
                row = {"id": uid, "speaker": spk, "emo": true, "emo_pred": pred,
                       "emo_posteriors": posteriors[i], "condition": self.test_condition}
                if hasattr(batch, "words"):
                    row["words"] = batch.words[i]
                if hyps is not None:
                    row["words_pred"] = hyps[i]
                self.test_rows.append(row)
        return loss

    def on_stage_start(self, stage, epoch=None):
        self.ser_metric = self.hparams.ser_stats()
        self.wer_metric = self.hparams.wer_stats()
        self.test_rows = []

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """After validation: log, keep the checkpoint to test (lowest SER error); after a test: log."""
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss
            return
        stats = {"loss": stage_loss, "error_rate": self.ser_metric.summarize("average")}
        if self.wer_metric.scores:
            stats["WER"] = self.wer_metric.summarize("error_rate")
        if stage == sb.Stage.VALID:
            self.hparams.train_logger.log_stats({"epoch": epoch}, train_stats={"loss": self.train_loss},
                                                valid_stats=stats)
            self.checkpointer.save_and_keep_only(meta=dict(stats, epoch=epoch),
                                                 **kept_checkpoints(self.hparams))
        else:
            self.hparams.train_logger.log_stats(
                {"Epoch loaded": self.hparams.epoch_counter.current,
                 "condition": self.test_condition}, test_stats=stats)


def load_pretrained_a2w(hparams):
    """The word vocabulary of ``pretrain_a2w.py`` and, for a YAML with the A2W modules,
    its weights; None for a YAML without words (audio-based)."""
    if "pretrained_a2w_folder" not in hparams:
        return None
    folder = hparams["pretrained_a2w_folder"]
    paths = [os.path.join(folder, "words.model")]
    has_asr = all(name in hparams["modules"] for name in A2W_PARTS)
    if has_asr:
        paths.append(os.path.join(folder, "a2w.ckpt"))
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise SystemExit(
            f"error: pre-trained file(s) not found: {', '.join(missing)}. Make them with "
            "python pretrain_a2w.py hparams/pretrain_a2w.yaml --data_folder=/path/to/LibriSpeech "
            "and pass --pretrained_a2w_folder=<its output_folder>/pretrained")
    vocab = WordVocabulary(paths[0])
    if len(vocab) != hparams["n_words"]:
        raise SystemExit(f"error: {paths[0]} has {len(vocab)} words, the YAML's n_words is "
                         f"{hparams['n_words']}: pass --vocab_size={len(vocab)}")
    if has_asr:
        state = torch.load(paths[1], map_location="cpu")
        for name in A2W_PARTS:
            hparams[name].load_state_dict(state[name])
    return vocab


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
    vocab = load_pretrained_a2w(hparams)
    datasets, label_encoder = emotion_datasets(hparams, test_manifests, word_vocabulary=vocab)

    brain = A2WSERBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    brain.check_streams()
    brain.label_encoder = label_encoder
    brain.vocab = vocab
    brain.fit(
        brain.hparams.epoch_counter,
        datasets["train"],
        datasets["valid"],
        train_loader_kwargs=hparams["train_dataloader_options"],
        valid_loader_kwargs=hparams["test_dataloader_options"],
    )
    test_on_conditions(brain, datasets, test_manifests)
