"""Training loops shared by the recipes: utterance-level SER, encoder fine-tuning, tests.

A recipe subclasses ``EmotionClassifierBrain`` and writes ``compute_forward``
(batch -> log-probabilities over ``hparams.emotions``); this class holds the rest:
NLL loss, validation error, checkpoints, and the test rows of the fold runner.
``ConditionTestLoopMixin`` (test loop over the noise conditions, predictions file) and
``EncoderFineTuningMixin`` (encoder and head optimizers, NewBob) serve any Brain.

hparams used: ``compute_cost``, ``error_stats``, ``train_logger``, ``epoch_counter``,
``select_on_valid`` (test the best validation epoch instead of the last one),
``predictions_file``, ``test_dataloader_options``.

Example
-------
>>> import torch
>>> class Mean(EmotionClassifierBrain):
...     def compute_forward(self, batch, stage):
...         return torch.log_softmax(self.modules.linear(batch), dim=-1)
>>> brain = Mean(modules={"linear": torch.nn.Linear(3, 4)}, hparams={"select_on_valid": True})
>>> checkpoint_selection(brain.hparams)
{'min_key': 'error_rate'}
"""

import speechbrain as sb
from speechbrain.utils.distributed import if_main_process

from speechbrain_ext.metrics import write_predictions


def checkpoint_selection(hparams):
    """Checkpoint tested: lowest validation error, or the last epoch (the default)."""
    return {"min_key": "error_rate"} if hparams.select_on_valid else {"max_key": "epoch"}


class ConditionTestLoopMixin:
    """Test loop over the conditions of the noise matrix, for any ``sb.Brain``.

    ``compute_objectives`` appends one dict per test utterance to ``self.test_rows``
    (reset by ``on_stage_start``) and may read ``self.test_condition``.
    """

    def test_conditions(self, datasets, conditions):
        """Test the selected checkpoint on ``test_<condition>`` of each condition, then write
        ``predictions_file`` (last: the fold runner takes it as "fold finished")."""
        all_rows = []
        for condition in conditions:
            self.test_condition = condition
            self.evaluate(datasets[f"test_{condition}"], **checkpoint_selection(self.hparams),
                          test_loader_kwargs=self.hparams.test_dataloader_options)
            all_rows.extend(self.test_rows)
        if if_main_process():
            write_predictions(self.hparams.predictions_file, all_rows)


class EncoderFineTuningMixin:
    """Fine-tuning of a pre-trained encoder: two optimizers and NewBob annealing of both.

    The parameters of the modules named in ``hparams.pretrained_modules`` (default
    ``["encoder"]``) train with ``encoder_opt_class``, every other trainable parameter
    with ``opt_class``; frozen parameters get no optimizer. ``anneal(metric)`` steps
    ``lr_annealing`` (and ``lr_annealing_encoder``) on a validation metric.
    """

    def init_optimizers(self):
        pretrained = getattr(self.hparams, "pretrained_modules", ["encoder"])
        groups = {"model": [], "encoder": []}
        for name, module in self.modules.items():
            key = "encoder" if name in pretrained else "model"
            groups[key] += [p for p in module.parameters() if p.requires_grad]
        self.optimizer = self.hparams.opt_class(groups["model"])
        self.optimizers_dict = {"model": self.optimizer}
        self.checkpointer.add_recoverable("optimizer", self.optimizer)
        self.encoder_optimizer = None
        if groups["encoder"]:
            self.encoder_optimizer = self.hparams.encoder_opt_class(groups["encoder"])
            self.optimizers_dict["encoder"] = self.encoder_optimizer
            self.checkpointer.add_recoverable("encoder_optimizer", self.encoder_optimizer)

    def log_and_checkpoint(self, stage, stats, epoch=None):
        """End of a validation or test stage for ``stats`` holding ``error_rate`` (the
        selection metric): after validation, anneal on it, log, and keep the checkpoint
        the test will use (the best ``error_rate``, or the last epoch when
        ``select_on_valid`` is False); after a test, log with the condition tested."""
        if stage == sb.Stage.VALID:
            rates = self.anneal(stats["error_rate"])
            self.hparams.train_logger.log_stats(
                {"epoch": epoch, **rates}, train_stats={"loss": self.train_loss},
                valid_stats=stats)
            keep = ({"min_keys": ["error_rate"]} if self.hparams.select_on_valid
                    else {"max_keys": ["epoch"]})
            self.checkpointer.save_and_keep_only(meta=dict(stats, epoch=epoch), **keep)
        else:
            self.hparams.train_logger.log_stats(
                {"Epoch loaded": self.hparams.epoch_counter.current,
                 "condition": self.test_condition}, test_stats=stats)

    def anneal(self, metric):
        """NewBob step of both learning rates on ``metric``; returns the rates used."""
        old_lr, new_lr = self.hparams.lr_annealing(metric)
        sb.nnet.schedulers.update_learning_rate(self.optimizer, new_lr)
        rates = {"lr": old_lr}
        if self.encoder_optimizer is not None:
            old_lr_enc, new_lr_enc = self.hparams.lr_annealing_encoder(metric)
            sb.nnet.schedulers.update_learning_rate(self.encoder_optimizer, new_lr_enc)
            rates["lr_encoder"] = old_lr_enc
        return rates


class EmotionClassifierBrain(ConditionTestLoopMixin, sb.Brain):
    """NLL training of an utterance classifier, with validation-only model selection."""

    def compute_objectives(self, predictions, batch, stage):
        emo, _ = batch.emo_encoded
        emo = emo.squeeze(1)
        if stage == sb.Stage.TRAIN and hasattr(self.hparams, "wav_augment"):
            emo = self.hparams.wav_augment.replicate_labels(emo)  # Augmenter may add copies
        loss = self.hparams.compute_cost(predictions, emo)
        if stage != sb.Stage.TRAIN:
            self.error_metrics.append(batch.id, predictions, emo)
        if stage == sb.Stage.TEST:
            predicted = self.label_encoder.decode_ndim(predictions.argmax(dim=-1).cpu())
            for uid, spk, true, pred in zip(batch.id, batch.speaker, batch.emo, predicted):
                self.test_rows.append({"id": uid, "speaker": spk, "emo": true, "emo_pred": pred,
                                       "condition": self.test_condition})
        return loss

    def on_stage_start(self, stage, epoch=None):
        if stage != sb.Stage.TRAIN:
            self.error_metrics = self.hparams.error_stats()
        self.test_rows = []

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Log and checkpoint after validation; keep the predictions after test."""
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss
            return
        stats = {"loss": stage_loss, "error_rate": self.error_metrics.summarize("average")}
        if stage == sb.Stage.VALID:
            self.hparams.train_logger.log_stats(
                {"epoch": epoch}, train_stats={"loss": self.train_loss}, valid_stats=stats
            )
            # Keep the checkpoint the test will use: the best on validation, or the last.
            keep = ({"min_keys": ["error_rate"]} if self.hparams.select_on_valid
                    else {"max_keys": ["epoch"]})
            self.checkpointer.save_and_keep_only(meta=dict(stats, epoch=epoch), **keep)
        else:
            self.hparams.train_logger.log_stats(
                {"Epoch loaded": self.hparams.epoch_counter.current,
                 "condition": self.test_condition}, test_stats=stats
            )
