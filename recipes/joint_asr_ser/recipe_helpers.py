"""Glue of this recipe's three training scripts: the CPU stand-in's pre-trained
weights and length-bucketed batches.

Example
-------
>>> load_pretrained({})   # a YAML without a pretrainer (wav2vec2 from the hub): nothing to do
"""

import os

import speechbrain as sb
from speechbrain.utils.distributed import run_on_main


class DynamicBatchSampler(sb.dataio.sampler.DynamicBatchSampler):
    """SpeechBrain's sampler, with each batch smaller than ``min_batch_size`` (a
    bucket's leftover) merged into the batch before it, so it may exceed
    ``max_batch_length`` by those turns. Batch norm in training (ECAPA-TDNN's pooled
    embedding) fails on a batch of one utterance."""

    def __init__(self, *args, min_batch_size=1, **kwargs):
        self.min_batch_size = min_batch_size
        super().__init__(*args, **kwargs)

    def _generate_batches(self):
        super()._generate_batches()
        merged = []
        for batch in self._batches:
            if merged and len(batch) < self.min_batch_size:
                merged[-1] = merged[-1] + batch
            else:
                merged.append(batch)
        if len(merged) > 1 and len(merged[0]) < self.min_batch_size:
            merged[1] = merged[0] + merged[1]
            merged = merged[1:]
        self._batches = merged


def train_loader_kwargs(hparams, train_set, brain):
    """Dataloader options of the training set.

    With ``dynamic_batching: True`` in the YAML, batches come from SpeechBrain's
    ``DynamicBatchSampler``: utterances of similar duration are batched together up
    to ``max_batch_length`` seconds (padding included) from ``num_buckets`` length
    buckets, reshuffled every epoch (the Brain calls its ``set_epoch``). On the
    synthetic IEMOCAP, random batches of 16 are 47 % padding. ``min_batch_size``
    (default 1) merges smaller batches into their neighbour. Otherwise
    ``train_dataloader_options`` as they are.
    """
    if not hparams.get("dynamic_batching", False):
        return hparams["train_dataloader_options"]
    sampler = DynamicBatchSampler(
        train_set, min_batch_size=hparams.get("min_batch_size", 1),
        max_batch_length=hparams["max_batch_length"],
        num_buckets=hparams["num_buckets"], length_func=lambda x: x["duration"],
        shuffle=True, batch_ordering="random", seed=hparams["seed"])
    brain.train_sampler = sampler  # so that Brain.fit reshuffles it every epoch
    options = {k: v for k, v in hparams["train_dataloader_options"].items()
               if k not in ("batch_size", "shuffle")}
    return dict(options, batch_sampler=sampler)


def load_pretrained(hparams):
    """Load what the YAML's ``pretrainer`` names (the CPU stand-in's CTC pre-training), if any.

    A missing file stops the run with its path and the command that makes it, instead
    of the Pretrainer's fetch error.
    """
    pretrainer = hparams.get("pretrainer")
    if pretrainer is None:
        return
    missing = [str(p) for p in pretrainer.paths.values() if not os.path.exists(str(p))]
    if missing:
        raise SystemExit(
            f"error: pre-trained file(s) not found: {', '.join(missing)}. Make them with "
            "python recipes/joint_asr_ser/pretrain_ctc.py "
            "recipes/joint_asr_ser/hparams/pretrain_ctc_crnn.yaml --data_folder=/path/to/LibriSpeech "
            "and pass --pretrained_ctc_folder=<its output_folder>/pretrained")
    run_on_main(pretrainer.collect_files)
    pretrainer.load_collected()
