#!/usr/bin/env python3
"""SER baseline on IEMOCAP: encoder -> mean pooling -> linear, one fold of a CV scheme.

The model of the upstream SpeechBrain IEMOCAP wav2vec2 recipe (and the SER baseline
of Bansal et al. 2023). The encoder is chosen in YAML:

> python train_ser.py hparams/ser_w2v2.yaml --data_folder=/path/to/IEMOCAP_full_release
> python train_ser.py hparams/ser_crnn.yaml --data_folder=/path/to/IEMOCAP_full_release

One run trains and tests one fold (``--fold_scheme`` session5 / speaker10 / random5,
``--fold`` from 1). All folds, with a summary: ``python -m speechbrain_ext.cv
recipes/baselines/train_ser.py hparams/ser_crnn.yaml --folds session5 --data_folder=...``.
The model is selected on the validation set of the fold, never on its test set.

Noise (MUSAN): a YAML with ``wav_augment`` trains on noise (``ser_crnn_noisy.yaml``);
``test_conditions`` lists the conditions of the fixed test matrix to evaluate on
(``[clean]``, or up to all 7 with ``--musan_folder``); predictions then carry a
``condition`` field and the fold runner reports one number per condition.
"""

import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

from speechbrain_ext.emotion_brain import EmotionClassifierBrain
from speechbrain_ext.recipe_data import emotion_datasets, prepare_fold_data


class EmotionBrain(EmotionClassifierBrain):
    """Utterance-level emotion classifier on top of a frame-level encoder.

    Loss, test rows and the test loop: ``speechbrain_ext.emotion_brain``; here the
    forward pass, NewBob annealing and the two optimizers (head, encoder).
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
        old_lr, new_lr = self.hparams.lr_annealing(stats["error_rate"])
        sb.nnet.schedulers.update_learning_rate(self.optimizer, new_lr)
        log = {"epoch": epoch, "lr": old_lr}
        if self.encoder_optimizer is not None:
            old_lr_enc, new_lr_enc = self.hparams.lr_annealing_encoder(stats["error_rate"])
            sb.nnet.schedulers.update_learning_rate(self.encoder_optimizer, new_lr_enc)
            log["lr_encoder"] = old_lr_enc
        self.hparams.train_logger.log_stats(
            log, train_stats={"loss": self.train_loss}, valid_stats=stats
        )
        self.checkpointer.save_and_keep_only(meta=dict(stats, epoch=epoch),
                                             min_keys=["error_rate"])

    def init_optimizers(self):
        """One optimizer for the head and, unless frozen, one for the encoder (own lr)."""
        self.optimizer = self.hparams.opt_class(self.modules.classifier.parameters())
        self.optimizers_dict = {"model": self.optimizer}
        self.checkpointer.add_recoverable("optimizer", self.optimizer)
        self.encoder_optimizer = None
        encoder_params = [p for p in self.modules.encoder.parameters() if p.requires_grad]
        if encoder_params:
            self.encoder_optimizer = self.hparams.encoder_opt_class(encoder_params)
            self.optimizers_dict["encoder"] = self.encoder_optimizer
            self.checkpointer.add_recoverable("encoder_optimizer", self.encoder_optimizer)


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
        train_loader_kwargs=hparams["train_dataloader_options"],
        valid_loader_kwargs=hparams["test_dataloader_options"],
    )
    # Best epoch on the validation set (select_on_valid), then the test fold per condition.
    brain.test_conditions(datasets, test_manifests)
