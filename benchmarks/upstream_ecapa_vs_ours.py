#!/usr/bin/env python3
"""Upstream's ECAPA-TDNN recipe through its own script against the same model through ours.

The same model (upstream SpeechBrain's IEMOCAP ECAPA-TDNN, ``hparams/train.yaml``) on
the same fold of the same corpus, trained two ways:

- upstream: its unmodified ``train.py`` (random batches of 16, two loader workers),
  run on our fold manifests by ``python -m data_prep.upstream``;
- ours: ``recipes/joint_asr_ser/train_ser.py hparams/ser_ecapa.yaml`` (length-bucketed
  batches of ``--turns_per_batch`` turns on average: ``max_batch_length`` is that many
  times the corpus's mean turn duration).

    python benchmarks/upstream_ecapa_vs_ours.py \\
        --recipe_dir /path/to/speechbrain/recipes/IEMOCAP/emotion_recognition \\
        --data_folder data/synthetic/IEMOCAP_full_release --epochs 3 --repeats 2

Runs alternate (upstream, ours, ours, upstream, ...) so that a noisy shared machine
slows both alike. Per run: seconds per epoch (training + validation, read from the
timestamps of SpeechBrain's ``log.txt``: from "Going into epoch k" to that epoch's
logged statistics), peak resident memory of the largest process (``/usr/bin/time``),
and the weighted accuracy of the test fold after the same number of epochs. Prints
the machine, one row per run and the ratios ours / upstream (median seconds per
epoch and peak memory).
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from data_prep.iemocap_prepare import prepare_iemocap  # noqa: E402
from speechbrain_ext.metrics import read_predictions, weighted_accuracy  # noqa: E402

STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - (.*)$")


def epoch_seconds(log_txt):
    """Seconds of each epoch (training + validation) from a SpeechBrain ``log.txt``."""
    starts, ends = {}, {}
    for line in open(log_txt):
        m = STAMP.match(line)
        if not m:
            continue
        when = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")
        start = re.search(r"Going into epoch (\d+)", m.group(2))
        end = re.search(r"train_logger - INFO - epoch: (\d+)\b", m.group(2), re.I)
        if start:
            starts[int(start.group(1))] = when
        elif end:
            ends[int(end.group(1))] = when
    return [(ends[k] - starts[k]).total_seconds() for k in sorted(ends) if k in starts]


def timed_run(cmd, folder, env):
    """Run ``cmd`` under GNU time; returns its peak resident memory (MB)."""
    os.makedirs(folder, exist_ok=True)
    stats = os.path.join(folder, "time_v.txt")
    with open(os.path.join(folder, "benchmark_stdout.txt"), "w") as out:
        subprocess.run(["/usr/bin/time", "-v", "-o", stats, *cmd], stdout=out,
                       stderr=subprocess.STDOUT, check=True, env=env, cwd=REPO)
    text = open(stats).read()
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024


def run_upstream(args, folder, env):
    cmd = [sys.executable, "-m", "data_prep.upstream", "--recipe_dir", args.recipe_dir,
           "--folds", "speaker10", "--fold_ids", str(args.fold), "--data_folder",
           args.data_folder, "--output_folder", folder, "--",
           f"--number_of_epochs={args.epochs}"]
    peak = timed_run(cmd, folder, env)
    fold = os.path.join(folder, f"fold{args.fold}")
    return peak, epoch_seconds(os.path.join(fold, "log.txt")), \
        read_predictions(os.path.join(fold, "predictions.json"))


def run_ours(args, folder, env, max_batch_length):
    cmd = [sys.executable, os.path.join(REPO, "recipes", "joint_asr_ser", "train_ser.py"),
           os.path.join(REPO, "recipes", "joint_asr_ser", "hparams", "ser_ecapa.yaml"),
           f"--data_folder={args.data_folder}", f"--output_folder={folder}",
           "--fold_scheme=speaker10", f"--fold={args.fold}", f"--number_of_epochs={args.epochs}",
           f"--max_batch_length={max_batch_length:.2f}"]
    peak = timed_run(cmd, folder, env)
    return peak, epoch_seconds(os.path.join(folder, "log.txt")), \
        read_predictions(os.path.join(folder, "predictions.json"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe_dir", required=True,
                        help="upstream's recipes/IEMOCAP/emotion_recognition")
    parser.add_argument("--data_folder", required=True)
    parser.add_argument("--fold", type=int, default=1, help="speaker10 fold")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--turns_per_batch", type=float, default=16,
                        help="upstream's batch_size; ours: mean turns per bucketed batch")
    parser.add_argument("--work_folder", default="results/benchmarks/upstream_ecapa")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args(argv)
    args.data_folder = os.path.abspath(args.data_folder)
    args.recipe_dir = os.path.abspath(args.recipe_dir)
    work = os.path.abspath(args.work_folder)
    if os.path.exists(work):
        shutil.rmtree(work)  # every run trains from scratch
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))

    data = json.load(open(prepare_iemocap(args.data_folder, os.path.join(work, "prep"))))
    mean = statistics.mean(entry["duration"] for entry in data.values())
    max_batch_length = args.turns_per_batch * mean
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {args.threads} threads; "
          f"{len(data)} turns, mean {mean:.2f} s; ours: max_batch_length "
          f"{max_batch_length:.1f} s")

    runs = {"upstream": [], "ours": []}
    order = ["upstream", "ours"]
    for repeat in range(args.repeats):
        for name in order if repeat % 2 == 0 else order[::-1]:
            folder = os.path.join(work, f"{name}_{repeat + 1}")
            if name == "upstream":
                peak, epochs, rows = run_upstream(args, folder, env)
            else:
                peak, epochs, rows = run_ours(args, folder, env, max_batch_length)
            wa = 100 * weighted_accuracy([r["emo"] for r in rows], [r["emo_pred"] for r in rows])
            runs[name].append({"s_per_epoch": epochs, "peak_mb": peak, "wa": wa})
            print(f"{name} run {repeat + 1}: s per epoch {[round(s) for s in epochs]}, "
                  f"peak {peak:.0f} MB, test WA {wa:.1f} % ({len(rows)} turns)", flush=True)

    def median(name, key):
        values = [v for r in runs[name] for v in
                  (r[key] if isinstance(r[key], list) else [r[key]])]
        return statistics.median(values)

    print("\n| pipeline | s per epoch (median) | peak memory MB | test WA % (runs) |")
    print("|---|---|---|---|")
    for name in ("upstream", "ours"):
        was = ", ".join(f"{r['wa']:.1f}" for r in runs[name])
        print(f"| {name} | {median(name, 's_per_epoch'):.0f} | {median(name, 'peak_mb'):.0f} "
              f"| {was} |")
    print(f"| **ratio ours / upstream** | **{median('ours', 's_per_epoch') / median('upstream', 's_per_epoch'):.2f}** "
          f"| {median('ours', 'peak_mb') / median('upstream', 'peak_mb'):.2f} "
          f"| {statistics.mean(r['wa'] for r in runs['ours']) - statistics.mean(r['wa'] for r in runs['upstream']):+.1f} points |")
    with open(os.path.join(work, "benchmark.json"), "w") as f:
        json.dump(runs, f, indent=1)


if __name__ == "__main__":
    main()
