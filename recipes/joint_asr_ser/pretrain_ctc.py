#!/usr/bin/env python3
"""CTC pre-training of the CPU stand-in for wav2vec2-960h on LibriSpeech.

The paper starts from ``wav2vec2-large-960h-lv60-self``, an encoder already trained
for ASR on LibriSpeech 960 h. On a CPU the recipes use a log-mel CRNN instead
(``speechbrain_ext.nnet.logmel_crnn.LogMelCRNN``); this script gives it the same kind of
start: character CTC on LibriSpeech (the synthetic mini-LibriSpeech here).

> python pretrain_ctc.py hparams/pretrain_ctc_crnn.yaml --data_folder=/path/to/LibriSpeech

The checkpoint with the lowest dev WER is exported to ``<output_folder>/pretrained/``
(``encoder.ckpt``, ``ctc_lin.ckpt``, ``test_wer.txt``); the ``*_crnn.yaml`` files of
this recipe load it with ``--pretrained_ctc_folder=<output_folder>/pretrained``. A
finished export is a cache: running the command again returns at once.
"""

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
from speechbrain_ext.nnet.logmel_crnn import encoder_frame_lengths


class CTCBrain(DDPBrain):
    """Encoder + linear CTC head, greedy decoding for the WER."""

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        if stage == sb.Stage.TRAIN and hasattr(self.hparams, "wav_augment"):
            wavs, lens = self.hparams.wav_augment(wavs, lens)
        frames = self.modules.encoder(wavs, lens)
        # The encoder's own frame count: the CTC loss and decoding read
        # round(lens * frames) frames, one too many or too few with the wave's lens.
        lens = encoder_frame_lengths(self.modules.encoder, lens, wavs.shape[1])
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


def librispeech_datasets(hparams, ctc_encoder):
    """train / valid / test DynamicItemDatasets with ``sig``, ``words`` and ``tokens``."""
    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(wav):
        return read_audio(wav)  # any rate / channel count -> 16 kHz mono

    datasets = {}
    for stage in ("train", "valid", "test"):
        datasets[stage] = sb.dataio.dataset.DynamicItemDataset.from_json(
            json_path=os.path.join(hparams["prep_folder"], f"{hparams[stage + '_split']}.json"),
            replacements={"data_root": hparams["data_folder"]},
            dynamic_items=[audio_pipeline, ctc_target_pipeline(ctc_encoder)],
            output_keys=["id", "sig", "words", "tokens"])
    # Sorted by duration: less padding, as upstream's LibriSpeech recipes.
    return {stage: dataset.filtered_sorted(sort_key="duration")
            for stage, dataset in datasets.items()}


def export_pretrained(hparams, test_wer):
    """``encoder.ckpt``, ``ctc_lin.ckpt`` and ``test_wer.txt`` into ``pretrained_folder``."""
    export = hparams["pretrained_folder"]
    tmp = export + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for name in ("encoder", "ctc_lin"):
        torch.save(hparams[name].state_dict(), os.path.join(tmp, f"{name}.ckpt"))
    with open(os.path.join(tmp, "test_wer.txt"), "w") as f:
        f.write(f"{test_wer:.2f}\n")
    shutil.rmtree(export, ignore_errors=True)
    os.replace(tmp, export)
    print(f"[pretrain_ctc] test WER {test_wer:.2f} %; exported to {export}")


if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file) as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    export = hparams["pretrained_folder"]
    if os.path.isdir(export):  # renamed into place only when complete
        print(f"[pretrain_ctc] cached: {export} (delete it to pre-train again)")
        sys.exit(0)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    sb.utils.distributed.run_on_main(prepare_librispeech, kwargs={
        "data_folder": hparams["data_folder"],
        "output_folder": hparams["prep_folder"],
        "splits": [hparams["train_split"], hparams["valid_split"], hparams["test_split"]],
    })
    ctc_encoder = character_encoder()
    datasets = librispeech_datasets(hparams, ctc_encoder)

    brain = CTCBrain(
        modules=hparams["modules"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
        opt_class=hparams["opt_class"],
    )
    brain.ctc_encoder = ctc_encoder
    brain.fit(
        brain.hparams.epoch_counter,
        datasets["train"],
        datasets["valid"],
        train_loader_kwargs=hparams["train_dataloader_options"],
        valid_loader_kwargs=hparams["test_dataloader_options"],
    )
    brain.evaluate(datasets["test"], min_key="WER",
                   test_loader_kwargs=hparams["test_dataloader_options"])

    # Export the selected (lowest dev WER) parameters; the test WER is for the record.
    sb.utils.distributed.run_on_main(export_pretrained, args=[hparams, brain.test_wer])
