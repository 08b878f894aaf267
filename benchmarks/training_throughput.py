#!/usr/bin/env python3
"""Training throughput, time split and peak memory of every recipe's CPU YAML.

Each run is the recipe's own training script, unchanged, on one fold of a corpus
(one epoch by default), in its own process, timed from outside: the script is started
through this file (``--child``), which wraps the Brain's methods before it runs. Per
training batch it records the seconds of audio (unpadded), the padded share of the
batch's input, the time in ``compute_forward`` + ``compute_objectives`` (forward),
``optimizers_step`` (optimizer) and the rest of ``fit_batch`` (backward); data
loading is the training stage's time outside ``fit_batch`` (the loader, the progress
bar). Peak memory is the process's maximum resident set (``ru_maxrss``) at the end
of the training stage, beside the same figure of a process that only imported torch
and SpeechBrain.

Every configuration runs ``--repeats`` times, interleaved (A B A B ...), so that
ratios between configurations are measured under the same load; absolute figures are
given as median (min-max) over the repeats, with the machine.

    python benchmarks/training_throughput.py --data_root data/synthetic --repeats 3 \\
        --out results/benchmarks/throughput

Arguments: ``--only NAME,NAME`` runs some configurations (their names: ``--list``);
``--repeats 0`` measures the fold runner's memory only.
The CTC and A2W pre-training runs come first; their exports feed the recipes that
need them (one epoch of pre-training: timing, not accuracy).
"""

import argparse
import json
import os
import platform
import re
import resource
import runpy
import shlex
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name, script, YAML, corpus ("librispeech" or "iemocap"), extra overrides
CONFIGS = [
    ("pretrain_ctc", "recipes/joint_asr_ser/pretrain_ctc.py",
     "recipes/joint_asr_ser/hparams/pretrain_ctc_crnn.yaml", "librispeech", []),
    ("pretrain_a2w", "recipes/a2w_asr_ser/pretrain_a2w.py",
     "recipes/a2w_asr_ser/hparams/pretrain_a2w_cpu.yaml", "librispeech", []),
    ("joint_asr_ser/asr_crnn", "recipes/joint_asr_ser/train_asr.py",
     "recipes/joint_asr_ser/hparams/asr_crnn.yaml", "iemocap", []),
    ("joint_asr_ser/ser_crnn", "recipes/joint_asr_ser/train_ser.py",
     "recipes/joint_asr_ser/hparams/ser_crnn.yaml", "iemocap", []),
    ("joint_asr_ser/joint_crnn", "recipes/joint_asr_ser/train_joint.py",
     "recipes/joint_asr_ser/hparams/joint_crnn.yaml", "iemocap", []),
    ("joint_asr_ser/joint_crnn, random batches", "recipes/joint_asr_ser/train_joint.py",
     "recipes/joint_asr_ser/hparams/joint_crnn.yaml", "iemocap", ["--dynamic_batching=False"]),
    ("joint_asr_ser/ser_ecapa", "recipes/joint_asr_ser/train_ser.py",
     "recipes/joint_asr_ser/hparams/ser_ecapa.yaml", "iemocap", []),
    ("cornn/cornn", "recipes/cornn/train.py", "recipes/cornn/hparams/cornn.yaml", "iemocap",
     ["--use_feature_cache=False"]),
    ("cornn/cornn, feature cache", "recipes/cornn/train.py",
     "recipes/cornn/hparams/cornn.yaml", "iemocap", ["--use_feature_cache=True"]),
    ("e_transformer/e_transformer", "recipes/e_transformer/train.py",
     "recipes/e_transformer/hparams/e_transformer.yaml", "iemocap", []),
    ("e_transformer/e_transformer, no feature cache", "recipes/e_transformer/train.py",
     "recipes/e_transformer/hparams/e_transformer.yaml", "iemocap",
     ["--use_feature_cache=False"]),
    ("asr_fusion_coattention/full_coattention_crnn", "recipes/asr_fusion_coattention/train.py",
     "recipes/asr_fusion_coattention/hparams/full_coattention_crnn.yaml", "iemocap", []),
    ("asr_fusion_coattention/full_coattention_crnn, random batches",
     "recipes/asr_fusion_coattention/train.py",
     "recipes/asr_fusion_coattention/hparams/full_coattention_crnn.yaml", "iemocap",
     ["--dynamic_batching=False"]),
    ("a2w_asr_ser/asr_ser_cpu", "recipes/a2w_asr_ser/train.py",
     "recipes/a2w_asr_ser/hparams/asr_ser_cpu.yaml", "iemocap", []),
]


# --------------------------------------------------------------------------- child
def _instrument(record_file):
    """Wrap ``speechbrain.Brain`` so that each training batch and stage is timed."""
    import speechbrain as sb

    record = {"batches": [], "train_stages": [], "peak_rss_mb_after_train": None}

    def timed(method, key, store):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                store[key] = store.get(key, 0.0) + time.perf_counter() - start
        return wrapper

    real_fit_batch, real_fit_train = sb.Brain.fit_batch, sb.Brain._fit_train

    def fit_batch(self, batch):
        times = {}
        if not getattr(self, "_benchmark_wrapped", False):
            self._benchmark_real = (self.compute_forward, self.compute_objectives,
                                    self.optimizers_step)
            self._benchmark_wrapped = True
        forward, objectives, step = self._benchmark_real
        self.compute_forward = timed(forward, "forward", times)
        self.compute_objectives = timed(objectives, "forward", times)
        self.optimizers_step = timed(step, "optimizer", times)
        audio_s, padded = _audio_and_padding(batch)
        start = time.perf_counter()
        loss = real_fit_batch(self, batch)
        times["fit_batch"] = time.perf_counter() - start
        self.compute_forward, self.compute_objectives, self.optimizers_step = \
            self._benchmark_real
        record["batches"].append(dict(times, audio_s=audio_s, padded_share=padded))
        return loss

    def fit_train(self, *args, **kwargs):
        first, start = len(record["batches"]), time.perf_counter()
        result = real_fit_train(self, *args, **kwargs)
        record["train_stages"].append({"s": time.perf_counter() - start, "first": first,
                                       "last": len(record["batches"])})
        record["peak_rss_mb_after_train"] = _peak_rss_mb()
        with open(record_file, "w") as f:
            json.dump(record, f)
        return result

    sb.Brain.fit_batch, sb.Brain._fit_train = fit_batch, fit_train


def _audio_and_padding(batch):
    """Seconds of audio and padded share of the batch's input (waveform or features)."""
    if hasattr(batch, "sig"):
        data, lens = batch.sig
        per_second = 16000
    else:  # cached features: 10-ms frames
        data, lens = batch.feats
        per_second = 100
    steps = data.shape[1]
    return float(lens.sum() * steps / per_second), float(1 - lens.float().mean())


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def child(record_file, script, argv):
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    _instrument(record_file)
    sys.argv = [script, *argv]
    runpy.run_path(script, run_name="__main__")
    with open(record_file) as f:
        record = json.load(f)
    record["peak_rss_mb_at_exit"] = _peak_rss_mb()  # the test stage included
    with open(record_file, "w") as f:
        json.dump(record, f)


def child_fold_runner(record_file, argv):
    """The fold runner in this process: its own peak and its largest child's."""
    sys.argv = ["fold_runner", *argv]
    try:
        runpy.run_module("speechbrain_ext.fold_runner", run_name="__main__")
    except SystemExit as status:
        if status.code:
            raise
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    with open(record_file, "w") as f:
        json.dump({"fold_runner_mb": _peak_rss_mb(), "largest_child_mb": children}, f)


def fold_runner_memory(args):
    """Peak memory of a fold runner testing cornn on the 7 conditions of one fold."""
    folder = os.path.abspath(os.path.join(args.out, "fold_runner"))
    os.makedirs(args.out, exist_ok=True)
    record_file = folder + ".json"
    cmd = [sys.executable, os.path.abspath(__file__), "--child_fold_runner", record_file,
           "recipes/cornn/train.py", "recipes/cornn/hparams/cornn.yaml",
           "--folds", args.fold_scheme, "--fold_ids", str(args.fold), "--cv_folder", folder,
           f"--data_folder={os.path.join(args.data_root, 'IEMOCAP_full_release')}",
           f"--musan_folder={os.path.join(args.data_root, 'musan')}",
           "--test_conditions=[clean,noise_15,noise_5,music_15,music_5,babble_15,babble_5]",
           "--number_of_epochs=1", f"--feature_cache_folder={folder}_cache"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
    with open(folder + ".console.txt", "w") as console:
        subprocess.run(cmd, cwd=REPO, env=env, stdout=console, stderr=subprocess.STDOUT,
                       check=True)
    with open(record_file) as f:
        return json.load(f)


# -------------------------------------------------------------------------- parent
def run_config(config, args, run_folder, pretrained):
    name, script, yaml, corpus, extra = config
    record_file = os.path.join(run_folder, "benchmark_record.json")
    overrides = [f"--output_folder={run_folder}", f"--number_of_epochs={args.epochs}"]
    if corpus == "librispeech":
        overrides.append(f"--data_folder={os.path.join(args.data_root, 'LibriSpeech')}")
    else:
        overrides += [f"--data_folder={os.path.join(args.data_root, 'IEMOCAP_full_release')}",
                      f"--fold_scheme={args.fold_scheme}", f"--fold={args.fold}"]
        text = open(os.path.join(REPO, yaml)).read()
        if "pretrained_ctc_folder:" in text:
            overrides.append(f"--pretrained_ctc_folder={pretrained['ctc']}")
        if "pretrained_a2w_folder:" in text:
            overrides.append(f"--pretrained_a2w_folder={pretrained['a2w']}")
        if "feature_cache_folder:" in text:  # one cache per run: computed, then read
            overrides.append(f"--feature_cache_folder={os.path.join(run_folder, 'cache')}")
    cmd = [sys.executable, os.path.abspath(__file__), "--child", record_file,
           os.path.join(REPO, script), os.path.join(REPO, yaml), *overrides, *extra]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
    start = time.perf_counter()
    with open(os.path.join(run_folder + ".console.txt"), "w") as console:
        subprocess.run(cmd, cwd=REPO, env=env, stdout=console, stderr=subprocess.STDOUT,
                       check=True)
    wall = time.perf_counter() - start
    with open(record_file) as f:
        record = json.load(f)
    record["run_wall_s"] = wall
    return record


def summarize(record, epoch):
    """Figures of one run's ``epoch``-th training stage (1-based)."""
    stage_record = record["train_stages"][epoch - 1]
    batches = record["batches"][stage_record["first"]:stage_record["last"]]
    stage = stage_record["s"]
    fit = sum(b["fit_batch"] for b in batches)
    forward = sum(b.get("forward", 0.0) for b in batches)
    optimizer = sum(b.get("optimizer", 0.0) for b in batches)
    audio = sum(b["audio_s"] for b in batches)
    return {
        "audio_s_per_s": audio / stage,
        "padded_share": statistics.fmean(b["padded_share"] for b in batches),
        "loading_share": (stage - fit) / stage,
        "forward_share": forward / stage,
        "backward_share": (fit - forward - optimizer) / stage,
        "optimizer_share": optimizer / stage,
        "train_stage_s": stage,
        "peak_rss_mb": record["peak_rss_mb_after_train"],
        "peak_rss_mb_at_exit": record["peak_rss_mb_at_exit"],
    }


def import_only_rss_mb():
    code = ("import resource, torch, speechbrain; "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    return float(subprocess.check_output([sys.executable, "-c", code], text=True))


def machine():
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, Python {platform.python_version()}")


def _spread(values, fmt):
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-" \
           f"{fmt.format(max(values))})"


def table(results, baseline_rss):
    lines = ["| configuration | audio s / s | padded | loading | forward | backward | "
             "optimizer | peak RSS MB in training (above import) | with the test |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, runs in results.items():
        if not runs:
            continue
        rss = [r["peak_rss_mb"] for r in runs]
        lines.append(
            f"| {name} | {_spread([r['audio_s_per_s'] for r in runs], '{:.1f}')} | "
            + " | ".join(f"{100 * statistics.median(r[k] for r in runs):.0f} %"
                         for k in ("padded_share", "loading_share", "forward_share",
                                   "backward_share", "optimizer_share"))
            + f" | {statistics.median(rss):.0f} ({statistics.median(rss) - baseline_rss:.0f})"
            + f" | {statistics.median(r['peak_rss_mb_at_exit'] for r in runs):.0f} |")
    return "\n".join(lines)


def ratios(results):
    """Per repeat: throughput of a variant / that of its base configuration."""
    lines = []
    for name, runs in results.items():
        if ", " not in name or not runs:
            continue
        base = results.get(name.split(", ")[0], [])
        per_repeat = [b["audio_s_per_s"] / v["audio_s_per_s"] for b, v in zip(base, runs)]
        if per_repeat:
            lines.append(f"- throughput of {name.split(', ')[0]} / that with "
                         f"{name.split(', ')[1]}: {_spread(per_repeat, '{:.2f}')} over "
                         f"{len(per_repeat)} repeats")
    return "\n".join(lines)


def only_names(only):
    """The configuration names of ``--only``: split at the commas that no space follows,
    since a variant's name is its base's, a comma, a space and what differs
    (``joint_asr_ser/joint_crnn, random batches``)."""
    return set(re.split(r",(?! )", only))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_root", default="data/synthetic",
                        help="folder with IEMOCAP_full_release and LibriSpeech")
    parser.add_argument("--out", default="results/benchmarks/throughput")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs per configuration; 0: the fold runner's memory only")
    parser.add_argument("--epochs", type=int, default=2,
                        help="training epochs per run; the last one is reported (the "
                             "first also fills a feature cache)")
    parser.add_argument("--fold_scheme", default="session5")
    parser.add_argument("--fold", type=int, default=1)
    parser.add_argument("--only", default=None,
                        help="comma-separated configuration names (--list), variants included: "
                             "'joint_asr_ser/joint_crnn,joint_asr_ser/joint_crnn, random batches'")
    parser.add_argument("--list", action="store_true", help="print the configurations")
    parser.add_argument("--report_only", action="store_true",
                        help="write the report from the runs already in --out, run nothing")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(c[0] for c in CONFIGS))
        return
    args.data_root = os.path.abspath(args.data_root)
    for corpus in ("IEMOCAP_full_release", "LibriSpeech"):
        if not os.path.isdir(os.path.join(args.data_root, corpus)):
            sys.exit(f"{args.data_root}/{corpus} not found: python -m data_prep.synthetic "
                     f"--out {args.data_root} --size demo")
    chosen = only_names(args.only) if args.only else None
    unknown = sorted(chosen - {c[0] for c in CONFIGS}) if chosen else []
    if unknown:  # else a typo would run nothing and report nothing
        parser.error(f"--only: no configuration named {', '.join(unknown)} (--list names them)")
    configs = [c for c in CONFIGS if chosen is None or c[0] in chosen]
    texts = "".join(open(os.path.join(REPO, c[2])).read() for c in configs)
    for name, key in (("pretrain_a2w", "pretrained_a2w_folder:"),
                      ("pretrain_ctc", "pretrained_ctc_folder:")):
        if key in texts and name not in [c[0] for c in configs]:  # feeds the others
            configs.insert(0, next(c for c in CONFIGS if c[0] == name))
    pretrained = {"ctc": os.path.join(args.out, "pretrain_ctc", "r0", "pretrained"),
                  "a2w": os.path.join(args.out, "pretrain_a2w", "r0", "pretrained")}
    results = {c[0]: [] for c in configs}
    print(f"[benchmark] {machine()}", flush=True)
    if not args.report_only:
        runner = fold_runner_memory(args)
        print(f"[benchmark] fold runner: {runner}", flush=True)
    for repeat in range(args.repeats):
        for config in configs:
            folder = os.path.join(args.out, config[0].replace(", ", "__").replace(" ", "_"),
                                  f"r{repeat}")
            if args.report_only:
                path = os.path.join(folder, "benchmark_record.json")
                if os.path.exists(path) and "peak_rss_mb_at_exit" in open(path).read():
                    with open(path) as f:
                        results[config[0]].append(summarize(json.load(f), args.epochs))
                continue
            os.makedirs(folder, exist_ok=True)
            record = run_config(config, args, os.path.abspath(folder), pretrained)
            figures = summarize(record, args.epochs)
            results[config[0]].append(figures)
            print(f"[benchmark] repeat {repeat + 1}/{args.repeats} {config[0]}: "
                  f"{figures['audio_s_per_s']:.1f} audio s/s, run {record['run_wall_s']:.0f} s",
                  flush=True)
    with open(os.path.join(args.out, "fold_runner.json")) as f:
        runner = json.load(f)
    repeats = min((len(runs) for runs in results.values()), default=0)
    baseline = import_only_rss_mb()
    report = f"Machine: {machine()}\nCommand: {shlex.join(sys.argv)}\n"
    if repeats:  # --repeats 0: the fold runner's memory only
        report += (f"Epoch {args.epochs} of {args.epochs} of each run, fold {args.fold_scheme} "
                   f"{args.fold}; median (min-max) over {repeats} interleaved repeats.\n\n"
                   f"{table(results, baseline)}\n\n{ratios(results)}\n\n")
    report += (f"A process that only imports torch and SpeechBrain: {baseline:.0f} MB.\n"
               f"Fold runner testing cornn on 7 conditions of one fold (238 turns x 7): "
               f"itself {runner['fold_runner_mb']:.0f} MB, its training process "
               f"{runner['largest_child_mb']:.0f} MB at peak.\n")
    print(report)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(report)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif len(sys.argv) > 1 and sys.argv[1] == "--child_fold_runner":
        child_fold_runner(sys.argv[2], sys.argv[3:])
    else:
        main()
