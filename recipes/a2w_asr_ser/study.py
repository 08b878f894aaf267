#!/usr/bin/env python3
"""Tables 1, 3, 4 and 5 of Feng et al. (Interspeech 2020): chosen rows over the folds, beside the paper.

Each row is an hparams file of this recipe (``hparams/<row>[_cpu].yaml``); Table 4's
row is ``asr_ser`` with ``--improvised_only=True``. The fold runner
(``speechbrain_ext.fold_runner``) runs each row (resumable: finished folds are
skipped, an interrupted fold resumes from its checkpoint). Then, in
``--study_folder``: with ``--folds session5`` (speaker-independent) ``table1.md``
(WA, UA, WER pooled over the folds run, beside the paper; the WER before
fine-tuning is the pipeline rows', i.e. the pre-trained A2W model's), ``table3.md``
(the ASR-SER confusion matrix over the folds) and ``table4.md``; with ``--folds
random5`` (speaker-dependent) ``table5.md``. Each also gives the A2W model's WER on
the LibriSpeech test set (``test_wer.txt`` of the pre-training; paper: 14.9 %)::

    python recipes/a2w_asr_ser/study.py --data_folder=/data/IEMOCAP_full_release \\
        --pretrained_a2w_folder=results/pretrain_a2w/1993/pretrained
    python recipes/a2w_asr_ser/study.py --size cpu --folds random5 --fold_ids 1 ...
    python recipes/a2w_asr_ser/study.py --size cpu --tables_only

Options it does not know go to every row's run (``--number_of_epochs=3``).
"""

import argparse
import json
import os
import sys

from speechbrain_ext import fold_runner

HERE = os.path.dirname(os.path.abspath(__file__))

# row: (label, hparams name, overrides, the paper's Table 1 (WA, UA, WER), Table 5 (WA, UA, WER))
ROWS = {
    "audio": ("Audio-based", "audio", [], (55.7, 57.0, None), (66.8, 67.0, None)),
    "text": ("Text-based", "text", [], (63.7, 63.6, None), (66.5, 66.6, None)),
    "text_asr": ("Text-based (ASR transcripts)", "text_asr", [], (51.0, 50.7, 40.7),
                 (52.4, 52.1, 40.7)),
    "combined": ("Combined", "combined", [], (68.9, 69.4, None), (73.2, 73.6, None)),
    "combined_asr": ("Combined (ASR transcripts)", "combined_asr", [], (60.1, 60.7, 40.7),
                     (65.6, 66.0, 40.7)),
    "asr_ser": ("ASR-SER model", "asr_ser", [], (68.6, 69.7, 35.7), (75.5, 76.4, 29.8)),
    "asr_ser_improvised": ("ASR-SER model, improvised turns only (Table 4)", "asr_ser",
                           ["--improvised_only=True"], (69.7, 63.1, 54.5), None),
}
TABLE1 = ("audio", "text", "text_asr", "combined", "combined_asr", "asr_ser")
PIPELINE = ("text_asr", "combined_asr")
# Table 3 of the paper: rows true happy, sad, neutral, angry; columns predicted, same order.
PAPER_CONFUSION = {"hap": (1159, 81, 280, 113), "sad": (83, 752, 197, 42),
                   "neu": (373, 207, 1009, 118), "ang": (105, 18, 113, 865)}
PAPER_ORDER = ("hap", "sad", "neu", "ang")
PAPER_LIBRISPEECH_WER = 14.9


def uses_a2w(row):
    """Does the row read the word vocabulary (and maybe the weights) of the A2W model?"""
    return ROWS[row][1] != "audio"


def row_runs(args, rows, overrides):
    """Fold-runner arguments of each row."""
    suffix = "_cpu" if args.size == "cpu" else ""
    runs = {}
    for row in rows:
        _, name, row_overrides, _, _ = ROWS[row]
        cv_args = [os.path.join(HERE, "train.py"), os.path.join(HERE, "hparams", f"{name}{suffix}.yaml"),
                   "--folds", args.folds, "--cv_folder", os.path.join(args.study_folder, row)]
        if args.fold_ids:
            cv_args += ["--fold_ids", args.fold_ids]
        cv_args += [f"--data_folder={args.data_folder}", *row_overrides, *overrides]
        if uses_a2w(row):
            cv_args.append(f"--pretrained_a2w_folder={args.pretrained_a2w_folder}")
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


def _cell(value):
    return "-" if value is None else f"{value:.1f}"


def format_table(rows, summaries, paper_column):
    """Markdown: the paper's WA / UA / WER beside ours (clean, pooled over the folds run)."""
    lines = ["| Model | paper WA % | paper UA % | paper WER % | ours WA % | ours UA % | ours WER % "
             "| folds |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        paper = ROWS[row][paper_column]
        if row in summaries:
            pooled = summaries[row]["conditions"]["clean"]["pooled"]
            ours = [_cell(pooled["WA"]), _cell(pooled["UA"]), _cell(pooled.get("WER")),
                    ",".join(str(k) for k in summaries[row]["folds"])]
        else:
            ours = ["not run", "", "", ""]
        lines.append("| " + " | ".join([ROWS[row][0], *map(_cell, paper), *ours]) + " |")
    return "\n".join(lines) + "\n"


def format_confusion(summary):
    """Table 3: ours (counts over the folds run) beside the paper's, rows = true class."""
    pooled = summary["conditions"]["clean"]["pooled"]
    index = {label: i for i, label in enumerate(pooled["labels"])}
    order = [c for c in PAPER_ORDER if c in index]
    lines = ["| true \\ predicted | " + " | ".join(f"{c} (ours / paper)" for c in order) + " |",
             "|---" * (len(order) + 1) + "|"]
    for true in order:
        cells = []
        for j, pred in enumerate(order):
            paper = PAPER_CONFUSION[true][PAPER_ORDER.index(pred)]
            cells.append(f"{pooled['confusion'][index[true]][index[pred]]} / {paper}")
        lines.append(f"| {true} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def librispeech_wer_line(pretrained_a2w_folder):
    """The A2W model's WER on the LibriSpeech test set, from its pre-training."""
    path = os.path.join(pretrained_a2w_folder or "", "test_wer.txt")
    if not pretrained_a2w_folder or not os.path.exists(path):
        return f"A2W model on LibriSpeech test: not given (paper: {PAPER_LIBRISPEECH_WER} %).\n"
    with open(path) as f:
        wer = float(f.read())
    return (f"A2W model on the LibriSpeech test set ({path}): WER {wer:.1f} % "
            f"(paper: {PAPER_LIBRISPEECH_WER} %).\n")


def wer_before_after(summaries):
    """WER of the pre-trained A2W model (pipeline rows) and of the fine-tuned one (ASR-SER)."""
    before = [summaries[r]["conditions"]["clean"]["pooled"].get("WER") for r in PIPELINE
              if r in summaries]
    after = summaries.get("asr_ser", {}).get("conditions", {}).get("clean", {}).get("pooled", {})
    return (f"WER on the test folds before fine-tuning (pre-trained A2W, pipeline rows): "
            f"{_cell(before[0]) if before else 'not run'} %; after joint fine-tuning "
            f"(ASR-SER): {_cell(after.get('WER'))} % (paper: 40.7 -> 35.7).\n")


def write_tables(study_folder, pretrained_a2w_folder=None):
    """The tables of the finished rows; returns their text."""
    summaries = read_summaries(study_folder)
    if not summaries:
        raise SystemExit(f"error: no finished row in {study_folder}")
    scheme = next(iter(summaries.values()))["scheme"]
    libri = librispeech_wer_line(pretrained_a2w_folder)
    if scheme == "random5":
        texts = {"table5.md": "# Table 5 (speaker-dependent, random5; ours pooled over the folds "
                              "listed)\n\n" + format_table(TABLE1, summaries, 4) + "\n"
                              + wer_before_after(summaries) + libri}
    else:
        texts = {"table1.md": f"# Table 1 ({scheme}; ours pooled over the folds listed)\n\n"
                              + format_table(TABLE1, summaries, 3) + "\n"
                              + wer_before_after(summaries) + libri}
        if "asr_ser" in summaries:
            texts["table3.md"] = (f"# Table 3: ASR-SER confusion matrix ({scheme}, folds "
                                  f"{summaries['asr_ser']['folds']}; paper: 5515 turns)\n\n"
                                  + format_confusion(summaries["asr_ser"]))
        if "asr_ser_improvised" in summaries:
            texts["table4.md"] = (f"# Table 4: improvised turns only ({scheme})\n\n"
                                  + format_table(["asr_ser_improvised"], summaries, 3))
    for name, text in texts.items():
        with open(os.path.join(study_folder, name), "w") as f:
            f.write(text)
    return "\n".join(texts.values())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     epilog="Unknown options go to every row's run.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--size", choices=("paper", "cpu"), default="paper",
                        help="paper: the paper's sizes (GPU); cpu: hparams/*_cpu.yaml")
    parser.add_argument("--data_folder", help="IEMOCAP_full_release (or see --corpus)")
    parser.add_argument("--pretrained_a2w_folder", default=None,
                        help="<output_folder>/pretrained of pretrain_a2w.py (same --size)")
    parser.add_argument("--rows", default=",".join(TABLE1),
                        help=f"comma-separated subset of {','.join(ROWS)}")
    parser.add_argument("--folds", default="session5", type=fold_runner.fold_scheme,
                        help="session5: Tables 1, 3, 4; random5: Table 5")
    parser.add_argument("--fold_ids", default=None, help="e.g. 1,2 (default: all)")
    parser.add_argument("--study_folder", default=None,
                        help="default: results/a2w_<size>_<folds>")
    parser.add_argument("--jobs", type=int, default=1, help="rows trained at once")
    parser.add_argument("--emit_commands", default=None, metavar="DIR",
                        help="run nothing: write one independent command per (model, fold) "
                             "for a cluster (DIR/commands.txt, tools/slurm_submit.sh)")
    parser.add_argument("--tables_only", action="store_true",
                        help="only rewrite the tables from finished rows")
    args, overrides = parser.parse_known_args(argv)
    args.study_folder = args.study_folder or os.path.join(
        "results", f"a2w_{args.size}_{args.folds}")
    rows = args.rows.split(",")
    unknown = set(rows) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}; choose among {', '.join(ROWS)}")
    if not args.tables_only:
        if not args.data_folder:
            parser.error("--data_folder is required (or --tables_only)")
        if not args.pretrained_a2w_folder and any(map(uses_a2w, rows)):
            parser.error("rows other than audio need --pretrained_a2w_folder")
        if args.emit_commands:
            return fold_runner.emit_study_commands(row_runs(args, rows, overrides),
                                                   __file__, argv)
        failed = fold_runner.run_many(row_runs(args, rows, overrides), args.jobs)
        if failed:
            print(f"error: {', '.join(failed)} failed; rerun the same command to resume",
                  file=sys.stderr)
            return 1
    print(write_tables(args.study_folder, args.pretrained_a2w_folder))
    print(f"[study] tables in {args.study_folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
