#!/usr/bin/env python3
"""SER baseline (Bansal et al. 2023, section 3.1): encoder -> mean pooling -> linear.

The model of the upstream SpeechBrain IEMOCAP wav2vec2 recipe, one fold of a CV
scheme. The encoder is chosen in YAML:

> python train_ser.py hparams/ser_w2v2.yaml --data_folder=/path/to/IEMOCAP_full_release
> python train_ser.py hparams/ser_crnn.yaml --data_folder=... --pretrained_ctc_folder=...

One run trains and tests one fold (``--fold_scheme`` session5 / speaker10 / random5,
``--fold`` from 1). All folds, with a summary: ``python -m speechbrain_ext.cv
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

from speechbrain_ext.emotion_brain import EmotionClassifierBrain, EncoderFineTuningMixin
from speechbrain_ext.recipe_data import (emotion_datasets, load_pretrained, prepare_fold_data,
                                         train_loader_kwargs)


class EmotionBrain(EncoderFineTuningMixin, EmotionClassifierBrain):
    """Utterance-level emotion classifier on top of a frame-level encoder.

    Loss, test rows, the test loop, the two optimizers (head, encoder) and NewBob:
    ``speechbrain_ext.emotion_brain``; here the forward pass.
    """

    def compute_forward(self, batch, stage):
        """wav -> encoder frames -> mean over valid frames -> log-probabilities."""
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        if stage == sb.Stage.TRAIN and hasattr(self.hparams, "wav_augment"):
            wavs, lens = self.hparams.wav_augment(wavs, lens)
        frames = self.modules.encoder(wavs, lens)
        pooled = self.hparams.mean_pooling(frames, lens).squeeze(1)
        return self.hparams.log_softmax(self.modules.classifier(pooled))

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Anneal, log and checkpoint after validation (train and test: the shared loop)."""
        if stage != sb.Stage.VALID:
            return super().on_stage_end(stage, stage_loss, epoch)
        stats = {"loss": stage_loss, "error_rate": self.error_metrics.summarize("average")}
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
    brain.test_conditions(datasets, test_manifests)
