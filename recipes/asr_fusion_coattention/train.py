#!/usr/bin/env python3
"""ASR outputs fused into joint ASR-SER training by (hierarchical) co-attention, one fold.

Y. Li, P. Bell, C. Lai, "Fusing ASR outputs in joint training for speech emotion
recognition", Proc. ICASSP 2022, doi:10.1109/ICASSP43922.2022.9746289,
arXiv:2110.15684 (section 4).

    wav -> MFCC -> max-pool(2) ----------------------------------------> acoustic stream
    wav -> ASR encoder (wav2vec2) -> hidden states of one layer -------> hidden stream
                    |  final layer -> CTC head -> transcript -> BERT --> text stream
    each stream: 2-layer BiLSTM (32) + self-attention (16 heads, 64 nodes)
    fusion (concatenation | co-attention | hierarchical co-attention) -> FC -> softmax

The YAML says which ``streams`` the model reads (in hierarchy order), where the text
comes from (``text_source``: ``asr``, the CTC transcript, or ``reference``, the
ground-truth baselines, which have no ASR) and which ``fusion`` module joins them.
With an ASR encoder the loss is ``asr_weight * L_CTC + (1 - asr_weight) * L_SER``
(the paper's lambda = 0.2); without one, ``L_SER``. In evaluation the SER head of an
ASR-SER model reads the ASR output only; ``text_in_training: reference`` lets it
read the reference in training.

> python train.py hparams/full_hierarchical_w2v2.yaml --data_folder=/path/to/IEMOCAP_full_release
> python train.py hparams/full_hierarchical_crnn.yaml --data_folder=... --pretrained_ctc_folder=...

Every row of the paper's Tables 3 and 4 over the folds: ``study.py``; its WER
analyses (Tables 1, 2): ``wer_analysis.py`` (README). The model is selected on the
validation set of the fold (lowest SER error), never on its test set.
"""

import os
import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.distributed import run_on_main

from data_prep.fold_data import emotion_datasets, prepare_fold_data
from speechbrain_ext.ctc import character_encoder, load_released_ctc_head
from speechbrain_ext.distributed import DDPBrain
from speechbrain_ext.evaluation import emotion_posteriors, kept_checkpoints, test_on_conditions
from speechbrain_ext.nnet.hidden_layers import select_hidden_layer
from speechbrain_ext.nnet.logmel_crnn import encoder_frame_lengths

STREAMS = ("acoustic", "hidden", "text")


class FusionASRSERBrain(DDPBrain):
    """Optional ASR path (CTC), one encoder per stream, a fusion head, an emotion classifier."""

    def check_streams(self):
        """The YAML's streams and text source are consistent with its modules."""
        streams, asr = self.hparams.streams, "asr_encoder" in self.modules
        unknown = set(streams) - set(STREAMS)
        if unknown or not streams:
            raise ValueError(f"streams {streams}: choose among {STREAMS}")
        if self.hparams.text_source not in ("asr", "reference"):
            raise ValueError(f"text_source {self.hparams.text_source!r}: asr or reference")
        if self.hparams.text_source == "reference" and asr:
            # The ground-truth rows are SER baselines: an ASR-SER model never reads the
            # reference in evaluation.
            raise ValueError("text_source: reference is for models without ASR")
        needs_asr = "hidden" in streams or ("text" in streams
                                            and self.hparams.text_source == "asr")
        if needs_asr != asr:
            raise ValueError(f"streams {streams} with text_source {self.hparams.text_source} "
                             f"{'need' if needs_asr else 'have no use for'} an asr_encoder")

    def compute_forward(self, batch, stage):
        """wav -> (CTC log-probs, transcripts) and emotion log-probs."""
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        out = {"lens": lens}
        hiddens = None
        if "asr_encoder" in self.modules:
            hiddens = self.modules.asr_encoder(wavs, lens)  # every layer's output
            # The encoder's own frame count: the CTC loss, decoding and the hidden stream
            # read round(lens * frames) frames, one too many or too few with the wave's.
            out["lens"] = encoder_frame_lengths(self.modules.asr_encoder, lens, wavs.shape[1])
            out["ctc"] = self.hparams.log_softmax(self.modules.ctc_head(hiddens[-1]))
            out["hypotheses"] = self.hparams.ctc_decoder(out["ctc"], out["lens"],
                                                         self.ctc_encoder)

        states, state_lens = [], []
        for stream in self.hparams.streams:
            if stream == "acoustic":
                x, x_lens = self.modules.acoustic_features(wavs, lens)
            elif stream == "hidden":
                x, x_lens = select_hidden_layer(hiddens, self.hparams.hidden_layer), out["lens"]
            else:
                x, x_lens = self.encode_text(self.ser_texts(batch, stage, out))
            states.append(self.modules[f"{stream}_stream"](x, x_lens))
            state_lens.append(x_lens)
        fused = self.modules.fusion(states, state_lens)
        out["emo"] = self.hparams.log_softmax(self.modules.emotion_classifier(fused))
        return out

    def ser_texts(self, batch, stage, out):
        """The text the SER head reads: the reference for the ground-truth baselines,
        else the CTC transcript (the reference in training only if the YAML says so)."""
        if self.hparams.text_source == "reference":
            return list(batch.words)
        if stage == sb.Stage.TRAIN and self.hparams.text_in_training == "reference":
            return list(batch.words)
        return out["hypotheses"]

    def encode_text(self, texts):
        """BERT token states of ``texts`` and their relative lengths."""
        self.modules.text_encoder.eval()  # frozen: no dropout though Brain.fit sets train()
        tokens, states = self.modules.text_encoder(texts, return_tokens=True)
        mask = tokens["attention_mask"]
        return states, mask.sum(dim=1).float() / mask.shape[1]

    def compute_objectives(self, predictions, batch, stage):
        """``asr_weight * CTC + (1 - asr_weight) * NLL`` (NLL alone without ASR); metrics."""
        emo = batch.emo_encoded[0].squeeze(1)
        loss = self.hparams.ser_cost(predictions["emo"], emo)
        if "ctc" in predictions:
            tokens, token_lens = batch.tokens
            loss_asr = self.hparams.ctc_cost(predictions["ctc"], tokens, predictions["lens"],
                                             token_lens)
            loss = self.hparams.asr_weight * loss_asr + (1 - self.hparams.asr_weight) * loss
        if stage == sb.Stage.TRAIN:
            return loss
        self.ser_metric.append(batch.id, predictions["emo"], emo)
        hyps = predictions.get("hypotheses")
        if hyps is not None:
            scored = [i for i, words in enumerate(batch.words) if words]  # WER: turns with words
            self.wer_metric.append([batch.id[i] for i in scored], [hyps[i].split() for i in scored],
                                   [batch.words[i].split() for i in scored])
        if stage == sb.Stage.TEST:
            emo_pred = self.label_encoder.decode_ndim(predictions["emo"].argmax(dim=-1).cpu())
            posteriors = emotion_posteriors(predictions["emo"], self.label_encoder)
            for i, (uid, spk, true, pred) in enumerate(zip(batch.id, batch.speaker, batch.emo,
                                                           emo_pred)):
                row = {"id": uid, "speaker": spk, "emo": true, "emo_pred": pred,
                       "emo_posteriors": posteriors[i], "words": batch.words[i],
                       "condition": self.test_condition}
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
        if "asr_encoder" in self.modules:
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


def train_loader_kwargs(hparams, train_set, brain):
    """Random batches of ``batch_size`` (the paper), or with ``dynamic_batching: True``
    length-bucketed batches of at most ``max_batch_length`` seconds, reshuffled every
    epoch (SpeechBrain's ``DynamicBatchSampler``): on CPU, one 20-s turn in a random
    batch of 20 pads all 20, and the attention's cost grows with the square of it."""
    if not hparams["dynamic_batching"]:
        return hparams["train_dataloader_options"]
    sampler = sb.dataio.sampler.DynamicBatchSampler(
        train_set, max_batch_length=hparams["max_batch_length"],
        num_buckets=hparams["num_buckets"], length_func=lambda x: x["duration"],
        shuffle=True, batch_ordering="random", seed=hparams["seed"])
    brain.train_sampler = sampler  # Brain.fit reshuffles it every epoch
    return {"batch_sampler": sampler, "num_workers": hparams["train_dataloader_options"]["num_workers"]}


def load_asr_start(hparams):
    """Start the ASR path from a model that already transcribes: the released CTC head
    (``released_ctc_source``) or the CPU stand-in's pre-trained files (``pretrainer``)."""
    if hparams.get("released_ctc_source"):
        load_released_ctc_head(hparams["ctc_lin"], hparams["released_ctc_source"],
                               cache_dir=hparams["wav2vec2_folder"])
    pretrainer = hparams.get("pretrainer")
    if pretrainer is not None:
        missing = [str(p) for p in pretrainer.paths.values() if not os.path.exists(str(p))]
        if missing:
            raise SystemExit(
                f"error: pre-trained file(s) not found: {', '.join(missing)}. Make them with "
                "python recipes/joint_asr_ser/pretrain_ctc.py "
                "recipes/joint_asr_ser/hparams/pretrain_ctc_crnn.yaml --data_folder=/path/to/"
                "LibriSpeech and pass --pretrained_ctc_folder=<its output_folder>/pretrained")
        run_on_main(pretrainer.collect_files)
        pretrainer.load_collected()


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
    load_asr_start(hparams)

    brain = FusionASRSERBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    brain.check_streams()
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
