"""The evaluation protocol of one fold: which checkpoint is tested, the test over the
noise conditions, the predictions file.

Every recipe keeps the checkpoint it will test and tests it by one rule, written here
once: with ``select_on_valid: True`` the epoch with the lowest validation
``error_rate``, otherwise the last epoch. Never a choice made on the test fold.

A recipe's ``on_stage_end`` calls ``checkpointer.save_and_keep_only(meta=...,
**kept_checkpoints(hparams))`` after validation; its main calls
``test_on_conditions(brain, datasets, conditions)``, which evaluates that checkpoint
on each condition of the noise matrix (``test_<condition>`` datasets) and writes the
rows the Brain collected in ``brain.test_rows`` to ``hparams.predictions_file``.

Example
-------
>>> tested_checkpoint({"select_on_valid": True})
{'min_key': 'error_rate'}
>>> kept_checkpoints({"select_on_valid": False})
{'max_keys': ['epoch']}
>>> import torch
>>> from speechbrain.dataio.encoder import CategoricalEncoder
>>> labels = CategoricalEncoder()
>>> labels.update_from_iterable(["ang", "sad"])
>>> emotion_posteriors(torch.tensor([[0.25, 0.75]]).log(), labels)
[{'ang': 0.25, 'sad': 0.75}]
"""

from speechbrain.utils.distributed import run_on_main

from speechbrain_ext.metrics import write_predictions


def _option(hparams, key):
    return hparams[key] if isinstance(hparams, dict) else getattr(hparams, key)


def tested_checkpoint(hparams):
    """``Brain.evaluate`` keyword: the lowest validation ``error_rate`` or the last epoch."""
    if _option(hparams, "select_on_valid"):
        return {"min_key": "error_rate"}
    return {"max_key": "epoch"}


def kept_checkpoints(hparams):
    """``Checkpointer.save_and_keep_only`` keywords that keep the checkpoint
    :func:`tested_checkpoint` names (the same rule)."""
    ((which, key),) = tested_checkpoint(hparams).items()
    return {f"{which}s": [key]}


def emotion_posteriors(log_probs, label_encoder):
    """One ``{label: posterior}`` dict per utterance of ``(batch, n_emotions)``
    log-posteriors: the ``emo_posteriors`` field of a prediction row, which an exported
    model must reproduce (``speechbrain_ext.export``)."""
    probs = log_probs.detach().exp().cpu().tolist()
    return [{label_encoder.ind2lab[i]: p for i, p in enumerate(row)} for row in probs]


def test_on_conditions(brain, datasets, conditions):
    """Test the kept checkpoint on ``datasets[f"test_{c}"]`` for each condition ``c``.

    Before each evaluation ``brain.test_condition`` is set to the condition; the
    Brain's ``compute_objectives`` appends one dict per test utterance to
    ``brain.test_rows`` (reset in its ``on_stage_start``). The predictions file is
    written last: the fold runner takes it as "fold finished".

    Arguments
    ---------
    brain : speechbrain.Brain
        With ``hparams.select_on_valid``, ``hparams.test_dataloader_options`` and
        ``hparams.predictions_file``.
    datasets : dict
        ``test_<condition>`` datasets.
    conditions : list of str
        Conditions to test, in order (``clean``, ``noise_5``, ...).

    Returns
    -------
    list of dict
        The rows written.
    """
    rows = []
    for condition in conditions:
        brain.test_condition = condition
        brain.evaluate(datasets[f"test_{condition}"], **tested_checkpoint(brain.hparams),
                       test_loader_kwargs=brain.hparams.test_dataloader_options)
        rows.extend(brain.test_rows)
    # Rank 0 writes; the others wait, so that all processes of a torchrun end together.
    run_on_main(write_predictions, args=[brain.hparams.predictions_file, rows])
    return rows
