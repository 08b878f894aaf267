#!/usr/bin/env python3
"""The noise-robustness study of Bansal et al. (2023): six models, 7 test conditions.

Runs the fold runner (``speechbrain_ext.fold_runner``) for each model type, then writes the
paper's Table 1 (``table1.md``) and Fig. 2 (``fig2.png``) into ``--study_folder``:

    model          script          hparams
    asr            train_asr.py    asr_<encoder>.yaml
    ser            train_ser.py    ser_<encoder>.yaml
    joint          train_joint.py  joint_<encoder>.yaml
    *_noisy        (same)          <model>_<encoder>_noisy.yaml   (trained on MUSAN noise)

``--encoder w2v2`` is the paper's setting (GPU); ``--encoder crnn`` the CPU stand-in,
which first pre-trains its encoder with CTC on LibriSpeech (``pretrain_ctc.py``,
cached in ``<study_folder>/pretrain_ctc``). Everything is resumable: finished folds
are skipped, an interrupted fold resumes from its checkpoint. Examples::

    python recipes/joint_asr_ser/study.py --encoder w2v2 --data_folder=/data/IEMOCAP_full_release \\
        --musan_folder=/data/musan
    python recipes/joint_asr_ser/study.py --encoder w2v2 --tables_only     # from finished runs

Options it does not know are passed to every recipe run (``--number_of_epochs=3``).
With ``--musan_folder`` every model is tested on the 7 conditions, all models of a fold
on the same matrix, built once (``<study_folder>/shared``, with the MUSAN pools); without
it, only on clean speech, and the ``*_noisy`` models cannot run.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys

from data_prep.noisy_testsets import CONDITIONS, condition_label
from speechbrain_ext import fold_runner
from table1 import format_joint_table, plot_joint_comparison  # this folder

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = ("asr", "ser", "joint", "asr_noisy", "ser_noisy", "joint_noisy")


def model_files(model, encoder):
    """(script, hparams) of a model type."""
    task = model.split("_")[0]
    suffix = "_noisy" if model.endswith("_noisy") else ""
    return (os.path.join(HERE, f"train_{task}.py"),
            os.path.join(HERE, "hparams", f"{task}_{encoder}{suffix}.yaml"))


def pretrain_stand_in(args, run=True):
    """CTC pre-training of the CPU encoder on LibriSpeech (cached): its command and the
    folder it exports to; ``run``: run it first."""
    out = os.path.join(args.study_folder, "pretrain_ctc")
    cmd = [sys.executable, os.path.join(HERE, "pretrain_ctc.py"),
           os.path.join(HERE, "hparams", "pretrain_ctc_crnn.yaml"),
           f"--data_folder={args.librispeech_folder}", f"--output_folder={out}"]
    if args.pretrain_epochs:
        cmd.append(f"--number_of_epochs={args.pretrain_epochs}")
    if args.pretrain_lr:
        cmd.append(f"--lr={args.pretrain_lr}")
    pretrained = os.path.join(out, "pretrained")
    # pretrain_ctc.py renames its export into place when complete, and then only says "cached"
    if run and os.path.isdir(pretrained):
        print(f"[study] pre-trained stand-in cached: {pretrained} (delete it to pre-train "
              "again)", flush=True)
    elif run:
        print(f"[study] {shlex.join(cmd)}", flush=True)
        # The stand-in runs its BiGRU directions in two threads of their own: OpenMP
        # threads that spin between parallel regions (the default) would take their cores.
        subprocess.run(cmd, check=True, env={"OMP_WAIT_POLICY": "PASSIVE", **os.environ})
    return cmd, pretrained


def write_tables(study_folder, accuracy="WA"):
    """Table 1 (markdown) and Fig. 2 (PNG) from the ``summary.json`` of every finished model
    in ``study_folder`` (also those of an earlier command)."""
    summaries = {}
    for model in MODELS:
        path = os.path.join(study_folder, model, "summary.json")
        if os.path.exists(path):
            with open(path) as f:
                summaries[model] = json.load(f)
    if not summaries:
        raise SystemExit(f"error: no finished model in {study_folder}")
    conditions = [c for c in CONDITIONS
                  if any(c in s["conditions"] for s in summaries.values())]
    labels = {c: condition_label(c) for c in conditions}
    first = next(iter(summaries.values()))
    folds = ", ".join(str(k) for k in first["folds"])
    scope = "all folds" if first["complete"] else f"folds {folds} of {first['n_folds_in_scheme']}"
    table = format_joint_table(summaries, conditions, labels, accuracy)
    text = (f"# Joint ASR-SER vs baselines ({first['scheme']}, {scope}; pooled predictions)\n\n"
            f"Models run: {', '.join(summaries)}. WER in %, lower is better; {accuracy} in %. "
            "Rel Imp as in the paper: relative WER reduction (%), accuracy gain (points).\n\n"
            + table)
    with open(os.path.join(study_folder, "table1.md"), "w") as f:
        f.write(text)
    plot_joint_comparison(summaries, conditions, os.path.join(study_folder, "fig2.png"),
                          labels, accuracy)
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     epilog="Unknown options go to every recipe run.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--encoder", choices=("w2v2", "crnn"), default="w2v2",
                        help="w2v2: the paper (GPU); crnn: the CPU stand-in")
    parser.add_argument("--data_folder", help="IEMOCAP_full_release")
    parser.add_argument("--musan_folder", default=None, help="musan (7 test conditions)")
    parser.add_argument("--librispeech_folder", default=None,
                        help="LibriSpeech, for the crnn encoder's CTC pre-training")
    parser.add_argument("--pretrain_epochs", type=int, default=None,
                        help="epochs of the crnn CTC pre-training (default: its YAML's, 8)")
    parser.add_argument("--pretrain_lr", type=float, default=None,
                        help="learning rate of the crnn CTC pre-training (default: its YAML's, "
                             "0.001)")
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated subset of {','.join(MODELS)} (default: all)")
    parser.add_argument("--folds", default="speaker10", type=fold_runner.fold_scheme,
                        help="fold scheme")
    parser.add_argument("--fold_ids", default=None, help="e.g. 1,2 (default: all)")
    parser.add_argument("--study_folder", default=None,
                        help="default: results/study_<encoder>_<folds>")
    parser.add_argument("--jobs", type=int, default=1,
                        help="models trained at once (CPU: 2 on 2 cores, one thread each; "
                             "with more than the cores, all but the first at nice 2: list the "
                             "longest first)")
    parser.add_argument("--emit_commands", default=None, metavar="DIR",
                        help="run nothing: write one independent command per (model, fold) "
                             "for a cluster (DIR/commands.txt, tools/slurm_submit.sh)")
    parser.add_argument("--tables_only", action="store_true",
                        help="only rewrite table1.md and fig2.png from finished runs")
    args, overrides = parser.parse_known_args(argv)
    args.study_folder = args.study_folder or os.path.join(
        "results", f"study_{args.encoder}_{args.folds}")
    models = args.models.split(",")
    unknown = set(models) - set(MODELS)
    if unknown:
        parser.error(f"unknown models {sorted(unknown)}; choose among {', '.join(MODELS)}")

    if not args.tables_only:
        if not args.data_folder:
            parser.error("--data_folder is required (or --tables_only)")
        if not args.musan_folder and any(m.endswith("_noisy") for m in models):
            parser.error("the *_noisy models need --musan_folder (or leave them out of --models)")
        prepare = []
        if args.encoder == "crnn":
            if not args.librispeech_folder:
                parser.error("--encoder crnn needs --librispeech_folder for its CTC pre-training")
            pretrain, pretrained = pretrain_stand_in(args, run=not args.emit_commands)
            prepare.append(pretrain)
            overrides.append(f"--pretrained_ctc_folder={pretrained}")
        recipe_args = [f"--data_folder={args.data_folder}"] + overrides
        if args.musan_folder:
            # One MUSAN preparation and one test matrix per fold for all the models: the
            # same files, built once (the fold runner puts the fold in "{fold}").
            shared = os.path.join(args.study_folder, "shared")
            recipe_args += [f"--musan_folder={args.musan_folder}",
                            f"--test_conditions=[{','.join(CONDITIONS)}]",
                            f"--musan_prep_folder={shared}/musan_prep",
                            f"--noisy_test_folder={shared}/noisy_test_{args.folds}_fold{{fold}}"]
        runs = {}
        for model in models:
            script, hparams = model_files(model, args.encoder)
            runs[model] = [script, hparams, "--folds", args.folds,
                           "--cv_folder", os.path.join(args.study_folder, model)]
            if args.fold_ids:
                runs[model] += ["--fold_ids", args.fold_ids]
            runs[model] += recipe_args
        if args.emit_commands:
            return fold_runner.emit_study_commands(runs, __file__, argv, prepare)
        failed = fold_runner.run_many(runs, args.jobs)
        if failed:
            print(f"error: {', '.join(failed)} failed; rerun the same command to resume",
                  file=sys.stderr)
            return 1
    print(write_tables(args.study_folder))
    print(f"[study] {args.study_folder}/table1.md, fig2.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
