#!/usr/bin/env python3
"""Tables 3 and 4 of Li et al. (ICASSP 2022): the chosen rows over the folds, beside the paper.

Each row is an hparams file of this recipe (``hparams/<yaml>_<size>.yaml``) with, for
the hidden-output rows of Table 4, a ``--hidden_layer`` override. The fold runner
(``speechbrain_ext.fold_runner``) runs each row (resumable: finished folds are
skipped, an interrupted fold resumes from its checkpoint); then ``table3.md`` and
``table4.md`` (WA, pooled over the folds run, beside the paper's WA) and
``comparison.md`` (the proposed model against acoustic-only and each two-stream
model, fold by fold) go into ``--study_folder``::

    python recipes/asr_fusion_coattention/study.py --size w2v2 --data_folder=/data/IEMOCAP_full_release
    python recipes/asr_fusion_coattention/study.py --size crnn --rows acoustic,full_hierarchical \\
        --data_folder=data/synthetic/IEMOCAP_full_release --pretrained_ctc_folder=... --fold_ids 1
    python recipes/asr_fusion_coattention/study.py --size crnn --tables_only

Options it does not know go to every row's run (``--number_of_epochs=3``).
"""

import argparse
import json
import os
import sys

from speechbrain_ext import fold_runner

HERE = os.path.dirname(os.path.abspath(__file__))

# row: (table, label, hparams name, overrides, the paper's WA %)
ROWS = {
    "gt_concat": (3, "SER (baseline) | Acoustic + Ground-truth transcripts | Concatenation",
                  "gt_concat", [], 63.5),
    "gt_coattention": (3, "SER (baseline) | Acoustic + Ground-truth transcripts | Co-attention",
                       "gt_coattention", [], 64.9),
    "hidden_concat": (3, "ASR-SER | Acoustic + Hidden output (middle layer) | Concatenation",
                      "hidden_concat", [], 58.7),
    "hidden_coattention": (3, "ASR-SER | Acoustic + Hidden output (middle layer) | Co-attention",
                           "hidden_coattention", [], 59.1),
    "text_concat": (3, "ASR-SER | Acoustic + Text output | Concatenation", "text_concat", [], 59.4),
    "text_coattention": (3, "ASR-SER | Acoustic + Text output | Co-attention",
                         "text_coattention", [], 60.3),
    "full_concat": (3, "ASR-SER | Acoustic + Hidden (middle) + Text output | Concatenation",
                    "full_concat", [], 62.2),
    "full_coattention": (3, "ASR-SER | Acoustic + Hidden (middle) + Text output | Co-attention",
                         "full_coattention", [], 62.9),
    "full_hierarchical": (3, "ASR-SER | Acoustic + Hidden (middle) + Text output | "
                             "Hierarchical co-attention", "full_hierarchical", [], 63.4),
    "acoustic": (4, "SER (baseline) | Acoustic", "acoustic", [], 51.4),
    "gt_only": (4, "SER (baseline) | Ground-truth transcripts", "gt_only", [], 60.0),
    "hidden_first": (4, "ASR-SER | Hidden output (first layer)", "hidden_only",
                     ["--hidden_layer=first"], 45.6),
    "hidden_middle": (4, "ASR-SER | Hidden output (middle layer)", "hidden_only",
                      ["--hidden_layer=middle"], 46.1),
    "hidden_final": (4, "ASR-SER | Hidden output (final layer)", "hidden_only",
                     ["--hidden_layer=final"], 42.0),
    "text_only": (4, "ASR-SER | Text output", "text_only", [], 47.7),
}
PROPOSED = "full_hierarchical"
COMPARED = ("acoustic", "hidden_concat", "hidden_coattention", "text_concat", "text_coattention")


def uses_asr(row):
    """Does the row's hparams file have an ASR path (and so a pre-trained encoder)?"""
    name = ROWS[row][2]
    return name.startswith(("hidden", "text", "full"))


def row_runs(args, rows, overrides):
    """Fold-runner arguments of each row."""
    runs = {}
    for row in rows:
        _, _, name, row_overrides, _ = ROWS[row]
        cv_args = [os.path.join(HERE, "train.py"), os.path.join(HERE, "hparams", f"{name}_{args.size}.yaml"),
                   "--folds", args.folds, "--cv_folder", os.path.join(args.study_folder, row)]
        if args.fold_ids:
            cv_args += ["--fold_ids", args.fold_ids]
        cv_args += [f"--data_folder={args.data_folder}", *row_overrides, *overrides]
        if args.pretrained_ctc_folder and uses_asr(row):
            cv_args.append(f"--pretrained_ctc_folder={args.pretrained_ctc_folder}")
        runs[row] = cv_args
    return runs


def read_summaries(study_folder):
    """``summary.json`` of every finished row in ``study_folder``."""
    summaries = {}
    for row in ROWS:
        path = os.path.join(study_folder, row, "summary.json")
        if os.path.exists(path):
            with open(path) as f:
                summaries[row] = json.load(f)
    return summaries


def format_table(table, summaries):
    """Markdown of Table 3 or 4: the paper's WA beside ours (pooled, clean), UA, WER."""
    lines = ["| Model | Feature | Fusion | paper WA % | ours WA % | ours UA % | ours WER % | folds |",
             "|---|---|---|---|---|---|---|---|"]
    for row, (number, label, _, _, paper) in ROWS.items():
        if number != table:
            continue
        parts = label.split(" | ") + [""] * (3 - len(label.split(" | ")))
        if row in summaries:
            pooled = summaries[row]["conditions"]["clean"]["pooled"]
            wer = f"{pooled['WER']:.1f}" if "WER" in pooled else "-"
            ours = [f"{pooled['WA']:.1f}", f"{pooled['UA']:.1f}", wer,
                    ",".join(str(k) for k in summaries[row]["folds"])]
        else:
            ours = ["not run", "", "", ""]
        lines.append("| " + " | ".join(parts + [f"{paper:.1f}"] + ours) + " |")
    return "\n".join(lines) + "\n"


def format_comparison(summaries):
    """The proposed model's WA minus each compared row's, per fold both have run."""
    if PROPOSED not in summaries:
        return "The proposed model (full_hierarchical) has not run.\n"
    mine = summaries[PROPOSED]["conditions"]["clean"]
    lines = ["| against | paper: gain (points) | folds | WA gain per fold (points) | "
             "pooled WA gain | better in |", "|---|---|---|---|---|---|"]
    for row in COMPARED:
        if row not in summaries:
            continue
        other = summaries[row]["conditions"]["clean"]
        folds = sorted(set(mine["per_fold"]) & set(other["per_fold"]), key=int)
        gains = [mine["per_fold"][k]["WA"] - other["per_fold"][k]["WA"] for k in folds]
        pooled = mine["pooled"]["WA"] - other["pooled"]["WA"]
        lines.append(f"| {row} | {ROWS[PROPOSED][4] - ROWS[row][4]:+.1f} | {','.join(folds)} | "
                     + ", ".join(f"{g:+.1f}" for g in gains)
                     + f" | {pooled:+.1f} | {sum(g > 0 for g in gains)} of {len(gains)} folds |")
    return "\n".join(lines) + "\n"


def write_tables(study_folder):
    """table3.md, table4.md and comparison.md from the finished rows; returns their text."""
    summaries = read_summaries(study_folder)
    if not summaries:
        raise SystemExit(f"error: no finished row in {study_folder}")
    first = next(iter(summaries.values()))
    texts = {
        "table3.md": f"# Table 3 ({first['scheme']}; ours pooled over the folds listed)\n\n"
                     + format_table(3, summaries),
        "table4.md": f"# Table 4 ({first['scheme']}; ours pooled over the folds listed)\n\n"
                     + format_table(4, summaries),
        "comparison.md": "# The proposed model (hierarchical co-attention) against the others\n\n"
                         + format_comparison(summaries),
    }
    for name, text in texts.items():
        with open(os.path.join(study_folder, name), "w") as f:
            f.write(text)
    return "\n".join(texts.values())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     epilog="Unknown options go to every row's run.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--size", choices=("w2v2", "crnn"), default="w2v2",
                        help="w2v2: the paper (GPU); crnn: the CPU stand-ins")
    parser.add_argument("--data_folder", help="IEMOCAP_full_release (or see --corpus)")
    parser.add_argument("--pretrained_ctc_folder", default=None,
                        help="crnn: the stand-in's pre-trained encoder (recipes/joint_asr_ser/"
                             "pretrain_ctc.py), passed to the rows with an ASR path")
    parser.add_argument("--rows", default=",".join(ROWS),
                        help=f"comma-separated subset of {','.join(ROWS)}")
    parser.add_argument("--folds", default="session5", type=fold_runner.fold_scheme,
                        help="fold scheme")
    parser.add_argument("--fold_ids", default=None, help="e.g. 1,2 (default: all)")
    parser.add_argument("--study_folder", default=None,
                        help="default: results/coattention_<size>_<folds>")
    parser.add_argument("--jobs", type=int, default=1, help="rows trained at once")
    parser.add_argument("--emit_commands", default=None, metavar="DIR",
                        help="run nothing: write one independent command per (model, fold) "
                             "for a cluster (DIR/commands.txt, tools/slurm_submit.sh)")
    parser.add_argument("--tables_only", action="store_true",
                        help="only rewrite the tables from finished rows")
    args, overrides = parser.parse_known_args(argv)
    args.study_folder = args.study_folder or os.path.join(
        "results", f"coattention_{args.size}_{args.folds}")
    rows = args.rows.split(",")
    unknown = set(rows) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}; choose among {', '.join(ROWS)}")
    if not args.tables_only:
        if not args.data_folder:
            parser.error("--data_folder is required (or --tables_only)")
        if args.size == "crnn" and not args.pretrained_ctc_folder and any(map(uses_asr, rows)):
            parser.error("--size crnn: the ASR-SER rows need --pretrained_ctc_folder")
        if args.emit_commands:
            return fold_runner.emit_study_commands(row_runs(args, rows, overrides),
                                                   __file__, argv)
        failed = fold_runner.run_many(row_runs(args, rows, overrides), args.jobs)
        if failed:
            print(f"error: {', '.join(failed)} failed; rerun the same command to resume",
                  file=sys.stderr)
            return 1
    print(write_tables(args.study_folder))
    print(f"[study] {args.study_folder}/table3.md, table4.md, comparison.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
