"""Fold runner: runs a recipe over every fold of a scheme, then summarises.

::

    python -m speechbrain_ext.fold_runner RECIPE_SCRIPT HPARAMS --folds session5 \\
        [--fold_ids 1,2] [--cv_folder DIR] [--launcher "torchrun --nproc_per_node=2"] \\
        [--summarize_only] [recipe overrides, e.g. --data_folder=... --number_of_epochs=5]

Each fold runs as ``RECIPE_SCRIPT HPARAMS --fold_scheme=S --fold=K
--output_folder=CV_FOLDER/foldK [overrides]`` in its own process, ``{fold}`` in an
override replaced by K (``--noisy_test_folder=study/noisy_test/fold{fold}``). A fold is
finished when its ``predictions.json`` exists (the recipe writes it atomically
after testing); a rerun skips finished folds and resumes the first unfinished
one from its last checkpoint. Finally ``CV_FOLDER`` receives ``summary.json``,
``summary.md`` (mean ± std over folds, and pooled over all predictions, per test
condition) and ``confusion.png`` (pooled, first condition; not for an ASR-only recipe).

Example
-------
>>> import tempfile, os
>>> from speechbrain_ext.metrics import write_predictions
>>> cv_dir = tempfile.mkdtemp()
>>> for k, pred in ((1, "ang"), (2, "hap")):
...     os.makedirs(f"{cv_dir}/fold{k}")
...     write_predictions(f"{cv_dir}/fold{k}/predictions.json",
...         [{"id": f"u{k}a", "emo": "ang", "emo_pred": pred},
...          {"id": f"u{k}b", "emo": "hap", "emo_pred": "hap"}])
>>> s = summarize_folds(cv_dir, "speaker10", [1, 2], name="demo")
>>> s["conditions"]["clean"]["mean"]["WA"], s["conditions"]["clean"]["pooled"]["WA"]
(75.0, 75.0)
>>> s["complete"]
False
"""

import argparse
import json
import logging
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from speechbrain_ext.folds import n_folds, speaker_independent

logger = logging.getLogger(__name__)
PREDICTIONS = "predictions.json"


def fold_folder(cv_folder, fold):
    """Output folder of one fold."""
    return os.path.join(cv_folder, f"fold{fold}")


def run_fold(script, hparams, scheme, fold, cv_folder, overrides, launcher):
    """Run one fold unless finished; raises ``subprocess.CalledProcessError`` on failure."""
    out = fold_folder(cv_folder, fold)
    if os.path.exists(os.path.join(out, PREDICTIONS)):
        logger.info("fold %d: finished earlier, skipped", fold)
        return False
    # "{fold}" in an override names a folder of this fold shared by the models of a study.
    cmd = launcher + [script, hparams, f"--fold_scheme={scheme}", f"--fold={fold}",
                      f"--output_folder={out}"] + [o.replace("{fold}", str(fold))
                                                   for o in overrides]
    logger.info("fold %d: %s", fold, shlex.join(cmd))
    subprocess.run(cmd, check=True)
    if not os.path.exists(os.path.join(out, PREDICTIONS)):
        raise RuntimeError(f"fold {fold} ended without writing {out}/{PREDICTIONS}")
    return True


def fold_scheme(scheme):
    """argparse type: a known fold scheme, or an error naming the known ones."""
    try:
        n_folds(scheme)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err
    return scheme


def _mean_std(values):
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def summarize_folds(cv_folder, scheme, folds, name=""):
    """Summarise the ``predictions.json`` of finished folds; writes nothing."""
    # Imported here: running a fold (a cluster job, each model of a study) needs neither
    # SpeechBrain nor matplotlib in the runner, and their import costs about 3 s each time.
    from speechbrain_ext.metrics import read_predictions, summarize

    by_condition = OrderedDict()
    for fold in folds:
        for row in read_predictions(os.path.join(fold_folder(cv_folder, fold), PREDICTIONS)):
            cond = row.get("condition", "clean")
            by_condition.setdefault(cond, OrderedDict()).setdefault(fold, []).append(row)
    conditions = OrderedDict()
    for cond, per_fold_rows in by_condition.items():
        per_fold = {fold: summarize(rows) for fold, rows in per_fold_rows.items()}
        metrics = [m for m in ("WA", "UA", "WER") if all(m in s for s in per_fold.values())]
        stats = {m: _mean_std([s[m] for s in per_fold.values()]) for m in metrics}
        pooled = summarize([r for rows in per_fold_rows.values() for r in rows])
        conditions[cond] = {
            "per_fold": {str(f): {"n": s["n"], **{m: s[m] for m in metrics}}
                         for f, s in per_fold.items()},
            "mean": {m: v[0] for m, v in stats.items()},
            "std": {m: v[1] for m, v in stats.items()},
            "pooled": pooled,
        }
    return {
        "name": name,
        "scheme": scheme,
        "folds": list(folds),
        "n_folds_in_scheme": n_folds(scheme),
        "complete": sorted(folds) == list(range(1, n_folds(scheme) + 1)),
        "speaker_independent": speaker_independent(scheme),
        "conditions": conditions,
    }


def write_summary(cv_folder, summary):
    """Write summary.json, summary.md and confusion.png; returns the markdown."""
    from speechbrain_ext.reports import format_summary_markdown, plot_confusion  # see above

    with open(os.path.join(cv_folder, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    markdown = format_summary_markdown(summary)
    with open(os.path.join(cv_folder, "summary.md"), "w") as f:
        f.write(markdown)
    first = next(iter(summary["conditions"].values()))["pooled"]
    if "confusion" not in first:  # an ASR-only recipe
        return markdown
    plot_confusion(first["confusion"], first["labels"], os.path.join(cv_folder, "confusion.png"),
                   title=f"{summary['name']} ({summary['scheme']}, pooled, % of true class)")
    return markdown


def build_parser():
    """The command line of the fold runner."""
    parser = argparse.ArgumentParser(
        description="Run a recipe over cross-validation folds and summarise the results.",
        epilog="Unknown options are passed to the recipe as hparams overrides.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("script", help="a recipe's training script (train*.py)")
    parser.add_argument("hparams", help="its hparams YAML")
    parser.add_argument("--folds", required=True, type=fold_scheme,
                        help="fold scheme: session5, speaker10, random5 (IEMOCAP), emobox6 "
                             "(RAVDESS), speakers<K> (any corpus)")
    parser.add_argument("--fold_ids", default=None,
                        help="comma-separated subset of folds to run (default: all)")
    parser.add_argument("--cv_folder", default=None,
                        help="default: results/cv/<hparams name>/<scheme>")
    parser.add_argument("--launcher", default=shlex.quote(sys.executable),
                        help="command that runs the script (e.g. 'torchrun --nproc_per_node=4')")
    parser.add_argument("--summarize_only", action="store_true",
                        help="only (re)write the summary of the folds already finished")
    parser.add_argument("--no_summary", action="store_true",
                        help="run the folds, write no summary (one fold of a job array)")
    parser.add_argument("--emit_commands", default=None, metavar="DIR",
                        help="run nothing; write DIR/commands.txt, one independent command "
                             "per fold, and DIR/summarize.sh (see write_cluster_commands)")
    return parser


def _name_folder_folds(args, parser):
    """The run's name (its hparams file's), CV folder and fold numbers."""
    name = os.path.splitext(os.path.basename(args.hparams))[0]
    cv_folder = args.cv_folder or os.path.join("results", "cv", name, args.folds)
    count = n_folds(args.folds)
    folds = (list(range(1, count + 1)) if args.fold_ids is None
             else [int(k) for k in args.fold_ids.split(",")])
    bad = [k for k in folds if not 1 <= k <= count]
    if bad:
        parser.error(f"--fold_ids {bad} out of range for {args.folds} (1..{count})")
    return name, cv_folder, folds


def write_cluster_commands(runs, folder, prepare=(), finish=()):
    """Write runs of the fold runner as independent jobs for a cluster scheduler.

    Writes into ``folder``:

    - ``commands.txt``: one line per (model, fold), the fold runner on that fold alone
      (``--fold_ids K --no_summary``): resumable, independent of every other line, so
      that a job array runs line ``$SLURM_ARRAY_TASK_ID``. Folds that share preparation
      (the MUSAN pools of a CV folder) may start together: it is prepared under a lock.
    - ``prepare.sh`` (only with ``prepare``): what every fold needs first, e.g. a
      pre-training whose output the runs name.
    - ``summarize.sh``: after every fold, each model's summary (``--summarize_only``),
      then the ``finish`` commands (a study's tables).

    Every line starts with ``cd`` into the current directory and uses this Python
    (``sys.executable``). ``tools/slurm_submit.sh folder`` submits the three as
    dependent SLURM jobs (or, with ``LOCAL=1``, runs them here).

    Arguments
    ---------
    runs : dict
        Model name -> fold-runner arguments (as for :func:`run_many`).
    folder : str
        Where the files are written (created).
    prepare : sequence of list of str
        Commands run once before the folds.
    finish : sequence of list of str
        Commands run after the summaries.

    Returns
    -------
    list of str
        The lines of ``commands.txt``.

    Example
    -------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> lines = write_cluster_commands({"ser": ["train.py", "ser.yaml", "--folds", "session5",
    ...     "--fold_ids", "1,3", "--cv_folder", "cv/ser", "--number_of_epochs=2"]}, folder)
    >>> [line.split(" -m ")[1] for line in lines]  # doctest: +NORMALIZE_WHITESPACE
    ['speechbrain_ext.fold_runner train.py ser.yaml --folds session5 --cv_folder cv/ser
      --fold_ids 1 --no_summary --number_of_epochs=2',
     'speechbrain_ext.fold_runner train.py ser.yaml --folds session5 --cv_folder cv/ser
      --fold_ids 3 --no_summary --number_of_epochs=2']
    >>> sorted(os.listdir(folder))
    ['commands.txt', 'summarize.sh']
    """
    parser = build_parser()
    here = f"cd {shlex.quote(os.getcwd())} && "
    runner = [sys.executable, "-m", "speechbrain_ext.fold_runner"]
    lines, summaries = [], []
    for cv_args in runs.values():
        args, overrides = parser.parse_known_args(cv_args)
        _, cv_folder, folds = _name_folder_folds(args, parser)
        common = [args.script, args.hparams, "--folds", args.folds, "--cv_folder", cv_folder]
        if args.launcher != parser.get_default("launcher"):
            common += ["--launcher", args.launcher]
        lines += [here + shlex.join([*runner, *common, "--fold_ids", str(fold), "--no_summary",
                                     *overrides]) for fold in folds]
        summaries.append(here + shlex.join([*runner, *common, "--fold_ids",
                                            ",".join(map(str, folds)), "--summarize_only"]))
    os.makedirs(folder, exist_ok=True)
    header = "#!/usr/bin/env bash\nset -euo pipefail\n"
    with open(os.path.join(folder, "commands.txt"), "w") as f:
        f.write("".join(line + "\n" for line in lines))
    if prepare:
        with open(os.path.join(folder, "prepare.sh"), "w") as f:
            f.write(header + "".join(here + shlex.join(c) + "\n" for c in prepare))
    with open(os.path.join(folder, "summarize.sh"), "w") as f:
        f.write(header + "".join(line + "\n" for line in summaries)
                + "".join(here + shlex.join(c) + "\n" for c in finish))
    return lines


def cluster_commands_message(folder, lines, prepare=()):
    """What to do with the files :func:`write_cluster_commands` wrote."""
    return (f"{len(lines)} independent fold commands in {folder}/commands.txt"
            f"{'; prepare.sh runs first' if prepare else ''}; summarize.sh after them all. "
            f"Submit to SLURM: tools/slurm_submit.sh {folder} (DRY_RUN=1: show the sbatch "
            "commands; LOCAL=1: run them here)")


def _split_emit_commands(argv):
    """(DIR, the other arguments) of a command line holding ``--emit_commands DIR`` or
    ``--emit_commands=DIR``."""
    argv = list(argv)
    for at, arg in enumerate(argv):
        if arg == "--emit_commands":
            return argv[at + 1], argv[:at] + argv[at + 2:]
        if arg.startswith("--emit_commands="):
            return arg.split("=", 1)[1], argv[:at] + argv[at + 1:]
    raise ValueError("no --emit_commands in the command line")


def emit_study_commands(runs, study_script, argv=None, prepare=()):
    """A study script's ``--emit_commands DIR`` (in ``argv``, default ``sys.argv``): its
    runs as cluster jobs (:func:`write_cluster_commands`), finished by the same study
    command with ``--tables_only``. Returns 0, the study's exit status."""
    folder, argv = _split_emit_commands(sys.argv[1:] if argv is None else argv)
    finish = [[sys.executable, os.path.abspath(study_script), *argv, "--tables_only"]]
    lines = write_cluster_commands(runs, folder, prepare, finish)
    print(f"[study] {cluster_commands_message(folder, lines, prepare)}", flush=True)
    return 0


def main(argv=None):
    parser = build_parser()
    args, overrides = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="[fold_runner] %(message)s")

    if args.emit_commands:
        _, argv = _split_emit_commands(sys.argv[1:] if argv is None else argv)
        lines = write_cluster_commands({_name_folder_folds(args, parser)[0]: argv},
                                       args.emit_commands)
        print(f"[fold_runner] {cluster_commands_message(args.emit_commands, lines)}")
        return 0
    name, cv_folder, folds = _name_folder_folds(args, parser)
    os.makedirs(cv_folder, exist_ok=True)

    if args.summarize_only:
        folds = [k for k in folds
                 if os.path.exists(os.path.join(fold_folder(cv_folder, k), PREDICTIONS))]
        if not folds:
            print(f"error: no finished fold in {cv_folder}", file=sys.stderr)
            return 2
    else:
        for fold in folds:
            try:
                run_fold(args.script, args.hparams, args.folds, fold, cv_folder, overrides,
                         shlex.split(args.launcher))
            except (subprocess.CalledProcessError, RuntimeError) as err:
                print(f"error: fold {fold} failed ({err}); finished folds are kept, rerun "
                      "the same command to resume", file=sys.stderr)
                return 1
        if args.no_summary:
            return 0
    markdown = write_summary(cv_folder, summarize_folds(cv_folder, args.folds, folds, name))
    print(markdown)
    print(f"[fold_runner] summary written to {cv_folder}/summary.md, summary.json, confusion.png")
    return 0


def summarize_finished_run(argv):
    """``--summarize_only`` of the fold-runner arguments ``argv``, in this process: the
    folds of ``--fold_ids`` (default: all) summarised, written; returns the markdown."""
    parser = build_parser()
    args, _ = parser.parse_known_args(argv)
    name, cv_folder, folds = _name_folder_folds(args, parser)
    return write_summary(cv_folder, summarize_folds(cv_folder, args.folds, folds, name))


def run_many(runs, jobs=1):
    """The fold runner of several models: ``runs`` maps a model's name to its fold-runner
    arguments (with ``--cv_folder``). ``jobs`` > 1 runs that many models at once, each
    in its own process with ``cpu_count // jobs`` threads and its console in
    ``<cv_folder>/cv_log.txt``, and this process writes its summary when it ends. With
    more jobs than cores, every model but the first (list the longest first) runs at a
    lower priority, ``nice -n 2``. Returns the names of the models that failed."""
    if jobs == 1:
        failed = []
        for model, cv_args in runs.items():
            print(f"[study] {model}: {shlex.join(cv_args)}", flush=True)
            if main(cv_args) != 0:
                failed.append(model)
        return failed
    cores = os.cpu_count() or 1
    threads = str(max(1, cores // jobs))
    # The kernel shares the cores equally, so the longest model would finish last while
    # the cores the others freed stay idle; a little more of the CPU for it shortens the
    # whole run (the quick start's 3 models on 2 cores, README) and changes no result.
    lower_priority = ["nice", "-n", "2"] if jobs > cores and shutil.which("nice") else []
    first = next(iter(runs), None)
    lock, summary_lock = threading.Lock(), threading.Lock()

    def say(line):
        with lock:
            print(line, flush=True)

    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)

    def run(model):
        cv_folder = runs[model][runs[model].index("--cv_folder") + 1]
        os.makedirs(cv_folder, exist_ok=True)
        log = os.path.join(cv_folder, "cv_log.txt")
        priority = [] if model == first else lower_priority
        say(f"[study] {model}: started, {threads} thread(s)"
            f"{', nice 2' if priority else ''}, console in {log}")
        with open(log, "a") as sink:
            proc = subprocess.run([*priority, sys.executable, "-m", "speechbrain_ext.fold_runner",
                                   *runs[model], "--no_summary"],
                                  stdout=sink, stderr=subprocess.STDOUT, env=env)
            if proc.returncode == 0:
                # Summarised here, not by the runner: its imports (SpeechBrain, matplotlib,
                # 4-5 s) would follow the last model on the critical path; this process
                # imports them once, while the others still train. pyplot is not thread-safe.
                with summary_lock:
                    sink.write(summarize_finished_run(runs[model]) + "\n")
        say(f"[study] {model}: {'finished' if proc.returncode == 0 else f'FAILED, see {log}'}")
        return proc.returncode

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        codes = dict(zip(runs, pool.map(run, runs)))
    return [model for model, code in codes.items() if code != 0]


if __name__ == "__main__":
    sys.exit(main())
