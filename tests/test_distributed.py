"""Every training script runs data-parallel under ``torchrun --nproc_per_node=2`` on CPU
(gloo): the two processes train on disjoint batches, only rank 0 writes checkpoints,
exports and ``predictions.json``, and the run leaves what a single-process run leaves."""

import json
import os
import re
import subprocess
import sys

import warnings

import pytest

from conftest import REPO, tiny_librispeech_vocab_size
from test_recipes import OPTIMIZER_CHECKS, _tiny_overrides

# Runs a recipe script as torchrun or python would, logging per process (RANK) the ids
# of every training batch and every file it saves (torch.save) or publishes (os.replace).
RECORDING_WRAPPER = """
import json, os, runpy, sys
import speechbrain as sb
import torch
log = open(os.path.join(os.environ["RUN_LOG_DIR"], f"rank{os.environ.get('RANK', '-')}.jsonl"),
           "a")
def record(**event):
    log.write(json.dumps(event) + "\\n")
    log.flush()
real_fit_batch, real_save, real_replace = sb.Brain.fit_batch, torch.save, os.replace
def fit_batch(self, batch):
    record(epoch=self.hparams.epoch_counter.current, batch=list(batch.id))
    return real_fit_batch(self, batch)
def save(obj, f, *args, **kwargs):
    record(wrote=os.path.abspath(str(f)))
    return real_save(obj, f, *args, **kwargs)
def replace(src, dst, *args, **kwargs):
    record(wrote=os.path.abspath(str(dst)))
    return real_replace(src, dst, *args, **kwargs)
sb.Brain.fit_batch, torch.save, os.replace = fit_batch, save, replace
sys.argv = sys.argv[1:]
sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))  # as `python script.py` does
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _events(log_dir, rank):
    path = log_dir / f"rank{rank}.jsonl"
    return [json.loads(line) for line in open(path)] if path.exists() else []


def _tree(folder):
    """Relative paths under ``folder``, checkpoint timestamps and logs left out."""
    paths = set()
    for root, _, files in os.walk(folder):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), folder)
            paths.add(re.sub(r"CKPT\+[^/]+", "CKPT", rel))
    return paths - {"env.log", "log.txt"}


# Known, not fully understood: a process sometimes aborts at interpreter exit after the
# run finished ("terminate called without an active exception"; seen in a few
# two-process runs under load, of the A2W scripts and once of train_joint.py, never in
# single-process runs). Everything the run wrote is still checked below; only that exit
# status is tolerated, with a warning; faulthandler prints the threads' stacks.
EXIT_ABORT = "terminate called without an active exception"


def _run(launcher, script, hparams, args, out, tmp_path):
    log_dir = out.parent / f"{out.name}_events"
    log_dir.mkdir()
    wrapper = tmp_path / "record.py"
    wrapper.write_text(RECORDING_WRAPPER)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               RUN_LOG_DIR=str(log_dir), OMP_NUM_THREADS="1", PYTHONFAULTHANDLER="1")
    cmd = [*launcher, str(wrapper), os.path.join(REPO, script), os.path.join(REPO, hparams),
           *args, f"--output_folder={out}", "--debug", "--debug_persistently"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    if (proc.returncode != 0
            and EXIT_ABORT in proc.stdout + proc.stderr and "exitcode: -6" in proc.stderr):
        warnings.warn(f"{script}: a process aborted at exit ({EXIT_ABORT}):\n{proc.stderr}")
        return log_dir
    assert proc.returncode == 0, (f"{' '.join(cmd)}: exit {proc.returncode}\n--- stdout\n"
                                  f"{proc.stdout}\n--- stderr\n{proc.stderr}")
    return log_dir


@pytest.mark.parametrize("script,hparams", sorted(OPTIMIZER_CHECKS.items()))
def test_torchrun_two_processes(script, hparams, corpora, pretrained_ctc, pretrained_a2w,
                                tmp_path):
    if "pretrain" in script:
        args = [f"--data_folder={corpora['librispeech']}"]
        if script.endswith("pretrain_a2w.py"):
            args += [f"--vocab_size={tiny_librispeech_vocab_size(corpora['librispeech'])}",
                     "--train_splits=[train-clean-100]"]
    else:
        args = [f"--data_folder={corpora['iemocap']}", "--fold_scheme=speaker10", "--fold=3"]
    args += _tiny_overrides(hparams, None, None, pretrained_ctc, corpora, pretrained_a2w)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node=2"]
    ddp_log = _run(torchrun, script, hparams, [*args, "--distributed_backend=gloo"],
                   tmp_path / "ddp", tmp_path)
    single_log = _run([sys.executable], script, hparams, args, tmp_path / "single", tmp_path)

    ranks = [_events(ddp_log, r) for r in (0, 1)]
    for epoch in (1, 2):  # --debug: 2 epochs of 2 batches
        seen = [[i for e in events if e.get("epoch") == epoch for i in e["batch"]]
                for events in ranks]
        assert seen[0] and seen[1], f"epoch {epoch}: a process trained on nothing"
        assert not set(seen[0]) & set(seen[1]), f"epoch {epoch}: both processes saw {seen}"
    out = str(tmp_path / "ddp")
    written = [[e["wrote"] for e in events if "wrote" in e and e["wrote"].startswith(out)]
               for events in ranks]
    assert written[1] == [], f"rank 1 wrote {written[1]}"
    assert any("/save/CKPT" in p for p in written[0])  # rank 0 saved the checkpoints

    assert _tree(tmp_path / "ddp") == _tree(tmp_path / "single")
    if "pretrain" not in script:
        ddp, single = (json.load(open(tmp_path / name / "predictions.json"))
                       for name in ("ddp", "single"))
        assert [(r["id"], r["condition"]) for r in ddp] == \
            [(r["id"], r["condition"]) for r in single]
        assert [sorted(r) for r in ddp] == [sorted(r) for r in single]
    assert _events(single_log, "-")  # the single run was recorded too


def test_debug_under_torchrun_without_debug_persistently_stops_clearly(corpora, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         os.path.join(REPO, "recipes/cornn/train.py"),
         os.path.join(REPO, "recipes/cornn/hparams/wo_bilstm.yaml"),
         f"--data_folder={corpora['iemocap']}", f"--output_folder={tmp_path}/out", "--debug",
         "--distributed_backend=gloo"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode != 0
    assert "needs --debug_persistently" in proc.stdout + proc.stderr
