#!/usr/bin/env python3
"""Pre-training of the acoustic-to-word (A2W) attention ASR on LibriSpeech.

H. Feng, S. Ueno, T. Kawahara, "End-to-end speech emotion recognition combined with
acoustic-to-word ASR model", Proc. Interspeech 2020, sections 3, 5.1 and 5.3: stacked
log-mel (+ deltas) -> 5-layer BiLSTM (320) -> location-based attention, 1-layer LSTM
(320) decoder, tanh hidden layer, softmax over words; cross-entropy; beam 4 at
decoding. The paper pre-trains on LibriSpeech 960 h (test WER 14.9 %).

> python pretrain_a2w.py hparams/pretrain_a2w.yaml --data_folder=/path/to/LibriSpeech

First the word vocabulary: a SentencePiece word model of the training transcripts
(``speechbrain_ext.words``). The checkpoint with the lowest dev WER is exported to
``<output_folder>/pretrained/`` (``words.model``, ``a2w.ckpt``, ``test_wer.txt``);
``train.py`` loads it with ``--pretrained_a2w_folder=<output_folder>/pretrained``. A
finished export is a cache: running the command again returns at once.
"""

import json
import os
import shutil
import sys

import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml

from data_prep.librispeech_prepare import prepare_librispeech
from speechbrain_ext.audio import read_audio
from speechbrain_ext.ctc import character_encoder, ctc_target_pipeline
from speechbrain_ext.distributed import DDPBrain
from speechbrain_ext.files import write_json_atomic
from speechbrain_ext.words import WordVocabulary

A2W_PARTS = ("asr_features", "asr_encoder", "asr_decoder")  # what a2w.ckpt holds


class A2WBrain(DDPBrain):
    """Teacher-forced cross-entropy in training (with ``ctc_weight > 0``, mixed with an
    auxiliary character CTC on the encoder for the first epochs, as upstream's
    attention recipes do); greedy (valid) or beam (test) search for the WER."""

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        feats, feat_lens = self.modules.asr_features(wavs, lens)
        enc = self.modules.asr_encoder(feats, feat_lens)
        logits, _ = self.modules.asr_decoder(batch.tokens_bos[0], enc, feat_lens)
        ctc_log_probs = None
        if self.ctc_active(stage):
            ctc_log_probs = self.hparams.log_softmax(self.modules.ctc_lin(enc))
        hyps = None
        if stage != sb.Stage.TRAIN:
            search = self.hparams.valid_search if stage == sb.Stage.VALID else self.hparams.test_search
            hyps, _, _, _ = search(enc, feat_lens)
        return self.hparams.log_softmax(logits), hyps, ctc_log_probs, feat_lens

    def ctc_active(self, stage):
        """The auxiliary character CTC of the first ``number_of_ctc_epochs`` epochs."""
        return (stage == sb.Stage.TRAIN and self.hparams.ctc_weight > 0
                and self.hparams.epoch_counter.current <= self.hparams.number_of_ctc_epochs)

    def compute_objectives(self, predictions, batch, stage):
        log_probs, hyps, ctc_log_probs, feat_lens = predictions
        tokens_eos, tokens_eos_lens = batch.tokens_eos
        loss = self.hparams.seq_cost(log_probs, tokens_eos, length=tokens_eos_lens)
        if ctc_log_probs is not None:
            chars, char_lens = batch.tokens
            loss_ctc = self.hparams.ctc_cost(ctc_log_probs, chars, feat_lens, char_lens)
            loss = self.hparams.ctc_weight * loss_ctc + (1 - self.hparams.ctc_weight) * loss
        if hyps is not None:
            self.wer_metric.append(batch.id, [self.vocab.decode(h).split() for h in hyps],
                                   [w.split() for w in batch.words])
        return loss

    def on_stage_start(self, stage, epoch=None):
        self.wer_metric = self.hparams.wer_stats()

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss
            return
        stats = {"loss": stage_loss, "WER": self.wer_metric.summarize("error_rate")}
        if stage == sb.Stage.VALID:
            self.hparams.train_logger.log_stats(
                {"epoch": epoch}, train_stats={"loss": self.train_loss}, valid_stats=stats)
            self.checkpointer.save_and_keep_only(meta=dict(stats, epoch=epoch), min_keys=["WER"])
        else:
            self.hparams.train_logger.log_stats(
                {"Epoch loaded": self.hparams.epoch_counter.current}, test_stats=stats)
            self.test_wer = stats["WER"]


def prepare_splits(hparams):
    """LibriSpeech manifests; the training splits joined into ``train.json``."""
    splits = hparams["train_splits"] + [hparams["valid_split"], hparams["test_split"]]
    paths = prepare_librispeech(hparams["data_folder"], hparams["prep_folder"], splits=splits)
    train = {}
    for split in hparams["train_splits"]:
        with open(paths[split]) as f:
            train.update(json.load(f))
    write_json_atomic(os.path.join(hparams["prep_folder"], "train.json"), train)


def word_vocabulary(hparams):
    """The SentencePiece word model of the training transcripts (trained once)."""
    model_file = hparams["words_prefix"] + ".model"
    if not os.path.exists(model_file):
        with open(os.path.join(hparams["prep_folder"], "train.json")) as f:
            sentences = [entry["words"] for entry in json.load(f).values()]
        WordVocabulary.train(sentences, hparams["words_prefix"], hparams["vocab_size"])
    return WordVocabulary(model_file)


def librispeech_datasets(hparams, vocab):
    """train / valid / test DynamicItemDatasets with ``sig``, ``words``, ``tokens_bos/eos``."""
    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(wav):
        return read_audio(wav)  # any rate / channel count -> 16 kHz mono

    names = {"train": "train", "valid": hparams["valid_split"], "test": hparams["test_split"]}
    datasets = {}
    for stage, name in names.items():
        datasets[stage] = sb.dataio.dataset.DynamicItemDataset.from_json(
            json_path=os.path.join(hparams["prep_folder"], f"{name}.json"),
            replacements={"data_root": hparams["data_folder"]},
            dynamic_items=[audio_pipeline, vocab.target_pipeline(),
                           ctc_target_pipeline(character_encoder())],
            output_keys=["id", "sig", "words", "tokens_bos", "tokens_eos", "tokens"])
    # Sorted by duration: less padding, as upstream's LibriSpeech recipes.
    datasets["train"] = datasets["train"].filtered_sorted(sort_key="duration")
    return datasets


def export(hparams, vocab, test_wer):
    """``words.model``, ``a2w.ckpt`` (features, encoder, decoder) and ``test_wer.txt``."""
    folder = hparams["pretrained_folder"]
    tmp = folder + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    shutil.copy(vocab.model_file, os.path.join(tmp, "words.model"))
    torch.save({name: hparams[name].state_dict() for name in A2W_PARTS},
               os.path.join(tmp, "a2w.ckpt"))
    with open(os.path.join(tmp, "test_wer.txt"), "w") as f:
        f.write(f"{test_wer:.2f}\n")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    print(f"[pretrain_a2w] test WER {test_wer:.2f} %; exported to {folder}")


if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file) as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    pretrained = hparams["pretrained_folder"]
    if all(os.path.exists(os.path.join(pretrained, f)) for f in ("words.model", "a2w.ckpt")):
        print(f"[pretrain_a2w] cached: {pretrained} (delete it to pre-train again)")
        sys.exit(0)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    sb.utils.distributed.run_on_main(prepare_splits, kwargs={"hparams": hparams})
    sb.utils.distributed.run_on_main(word_vocabulary, kwargs={"hparams": hparams})
    vocab = word_vocabulary(hparams)
    if len(vocab) != hparams["n_words"]:
        raise SystemExit(
            f"error: the word model of {hparams['train_splits']} has {len(vocab)} entries "
            f"(fewer words than --vocab_size={hparams['vocab_size']}): "
            f"pass --vocab_size={len(vocab)}, the output layer's size")
    datasets = librispeech_datasets(hparams, vocab)

    brain = A2WBrain(
        modules=hparams["modules"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
        opt_class=hparams["opt_class"],
    )
    brain.vocab = vocab
    brain.fit(
        brain.hparams.epoch_counter,
        datasets["train"],
        datasets["valid"],
        train_loader_kwargs=hparams["train_dataloader_options"],
        valid_loader_kwargs=hparams["test_dataloader_options"],
    )
    brain.evaluate(datasets["test"], min_key="WER",
                   test_loader_kwargs=hparams["test_dataloader_options"])
    # The selected (lowest dev WER) parameters; the test WER is for the record.
    sb.utils.distributed.run_on_main(export, args=[hparams, vocab, brain.test_wer])
