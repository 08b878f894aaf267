#!/usr/bin/env python3
"""The WER analyses of Li et al. (ICASSP 2022), Tables 1 and 2, beside the paper's numbers.

Table 1: WER, number of turns and share of short turns (fewer than 10 words) per
emotion; Table 2: WER per emotion and reference length (<= 10, 11-20, 21-30, > 30
words; the paper's buckets "21-30" and ">= 30" overlap: a 30-word turn counts in
21-30 here). Two sources of transcripts:

- an ASR model over a whole prepared corpus, before any SER training: the ASR path
  of one of this recipe's hparams files, as it starts (wav2vec2-base-960h with its
  released CTC head, as the paper; or the CPU stand-in)::

      python wer_analysis.py hparams/text_only_w2v2.yaml --data_folder=/data/IEMOCAP_full_release
      python wer_analysis.py hparams/text_only_crnn.yaml --data_folder=... --pretrained_ctc_folder=...

- the transcripts of trained folds (their ``predictions.json``, clean condition)::

      python wer_analysis.py --predictions results/coattention_crnn_session5/full_hierarchical

Writes ``wer_tables.md`` (and ``wer_rows.json``, the transcripts) into
``--analysis_folder`` (default: the YAML's ``output_folder``/wer_analysis or the
predictions' folder).
"""

import glob
import json
import os
import sys

import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from tqdm import tqdm

from speechbrain_ext.metrics import WORD_COUNT_BUCKETS, read_predictions, wer_by_group, \
    word_count_bucket, word_error_rate

EMOTIONS = ("ang", "hap", "neu", "sad")
PAPER_TABLE1 = {"WER": {"ang": 22.8, "hap": 38.9, "neu": 36.3, "sad": 29.5, "all": 32.7},
                "turns": {"ang": 1103, "hap": 1615, "neu": 1704, "sad": 1078, "all": 5500},
                "short": {"ang": 44.8, "hap": 55.7, "neu": 60.5, "sad": 52.7}}
PAPER_TABLE2 = {"<=10": {"ang": 26.5, "hap": 54.8, "neu": 48.4, "sad": 47.2, "all": 46.4},
                "11-20": {"ang": 21.8, "hap": 37.5, "neu": 36.1, "sad": 30.4, "all": 32.2},
                "21-30": {"ang": 21.4, "hap": 31.0, "neu": 27.2, "sad": 22.6, "all": 26.3},
                ">30": {"ang": 20.9, "hap": 31.0, "neu": 26.1, "sad": 20.1, "all": 25.0}}
SHORT_WORDS = 10  # "word count less than 10"


def wer_tables(rows):
    """Table 1 and Table 2 numbers from rows with ``emo``, ``words``, ``words_pred``.

    Turns without a reference word count in ``turns`` but not in any WER.

    Example
    -------
    >>> rows = [{"emo": "ang", "words": "a b", "words_pred": "a b"},
    ...         {"emo": "sad", "words": " ".join("w" * 12), "words_pred": ""}]
    >>> t1, t2 = wer_tables(rows)
    >>> t1["WER"], t1["turns"], t1["short"]
    ({'ang': 0.0, 'sad': 100.0, 'all': 85.71428571428571}, {'ang': 1, 'sad': 1, 'all': 2}, {'ang': 100.0, 'sad': 0.0, 'all': 50.0})
    >>> t2["11-20"]
    {'sad': 100.0, 'all': 100.0}
    """
    emotions = sorted({r["emo"] for r in rows})
    scored = [r for r in rows if r["words"].split()]
    refs, hyps = [r["words"] for r in scored], [r["words_pred"] for r in scored]
    table1 = {"WER": wer_by_group(refs, hyps, [r["emo"] for r in scored]),
              "turns": {e: sum(r["emo"] == e for r in rows) for e in emotions},
              "short": {}}
    table1["WER"]["all"] = word_error_rate(refs, hyps)
    table1["turns"]["all"] = len(rows)
    for emo in emotions + ["all"]:
        group = [r for r in rows if emo in ("all", r["emo"])]
        table1["short"][emo] = 100.0 * sum(len(r["words"].split()) < SHORT_WORDS
                                           for r in group) / len(group)
    buckets = [word_count_bucket(t) for t in refs]
    table2 = {}
    for bucket in WORD_COUNT_BUCKETS:
        inside = [i for i, b in enumerate(buckets) if b == bucket]
        if inside:
            table2[bucket] = wer_by_group([refs[i] for i in inside], [hyps[i] for i in inside],
                                          [scored[i]["emo"] for i in inside])
            table2[bucket]["all"] = word_error_rate([refs[i] for i in inside],
                                                    [hyps[i] for i in inside])
    return table1, table2


def format_tables(rows, source):
    """Markdown: our Table 1 and 2 beside the paper's (paper / ours in each cell)."""
    table1, table2 = wer_tables(rows)
    columns = [e for e in EMOTIONS if e in table1["turns"]] + ["all"]

    def cell(paper, ours, fmt="{:.1f}"):
        return f"{fmt.format(paper) if paper is not None else '-'} / " \
               f"{fmt.format(ours) if ours is not None else '-'}"

    head = "| | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns) + "\n"
    out = [f"# WER analyses (Li et al. 2022, Tables 1-2): paper / ours\n\nTranscripts: {source}. "
           f"{len(rows)} turns. Short: fewer than {SHORT_WORDS} words. A 30-word turn counts "
           "in 21-30.\n\n## Table 1\n\n" + head]
    for key, label, fmt in (("WER", "WER %", "{:.1f}"), ("turns", "turns", "{:d}"),
                            ("short", "short %", "{:.1f}")):
        out.append(f"| {label} | " + " | ".join(
            cell(PAPER_TABLE1[key].get(c), table1[key].get(c), fmt) for c in columns) + " |\n")
    out.append("\n## Table 2: WER % by number of words N\n\n" + head.replace("| |", "| N |", 1))
    for bucket in WORD_COUNT_BUCKETS:
        ours = table2.get(bucket, {})
        out.append(f"| {bucket} | " + " | ".join(
            cell(PAPER_TABLE2[bucket].get(c), ours.get(c)) for c in columns) + " |\n")
    return "".join(out)


def prediction_rows(path):
    """Clean-condition rows with transcripts from a predictions.json or every fold under a folder."""
    files = [path] if os.path.isfile(path) else sorted(
        glob.glob(os.path.join(path, "fold*", "predictions.json")))
    if not files:
        raise SystemExit(f"error: no predictions.json at {path}")
    rows = [r for f in files for r in read_predictions(f)
            if r.get("condition", "clean") == "clean"]
    if not rows or "words_pred" not in rows[0]:
        raise SystemExit(f"error: {path}: the predictions hold no transcripts (an ASR-SER row's do)")
    return rows


def asr_rows(hparams_file, overrides):
    """Transcribe every turn of the YAML's prepared corpus with its ASR path as it starts."""
    from data_prep.fold_data import prepare_corpus
    from speechbrain_ext.audio import read_audio
    from speechbrain_ext.ctc import character_encoder

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from train import load_asr_start  # this folder

    with open(hparams_file) as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    if "asr_encoder" not in hparams["modules"]:
        raise SystemExit(f"error: {hparams_file} has no ASR path; take an ASR-SER row's YAML")
    data_json = prepare_corpus(hparams)
    load_asr_start(hparams)
    encoder, head = hparams["asr_encoder"].eval(), hparams["ctc_head"].eval()
    ctc_encoder = character_encoder()
    with open(data_json) as f:
        data = json.load(f)
    root = hparams["data_folder"]
    rows = []
    with torch.no_grad():
        for uid, item in tqdm(sorted(data.items()), desc="transcribing"):
            wav = read_audio(item["wav"].replace("{data_root}", root)).unsqueeze(0)
            log_probs = hparams["log_softmax"](head(encoder(wav, torch.ones(1))[-1]))
            hyp = hparams["ctc_decoder"](log_probs, torch.ones(1), ctc_encoder)[0]
            rows.append({"id": uid, "emo": item["emo"], "words": item.get("words", ""),
                         "words_pred": hyp})
    return rows, hparams["output_folder"]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    folder = None
    if "--analysis_folder" in argv:
        i = argv.index("--analysis_folder")
        folder = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    if argv and argv[0] == "--predictions":
        if len(argv) != 2:
            raise SystemExit("usage: wer_analysis.py --predictions PATH [--analysis_folder DIR]")
        rows, source = prediction_rows(argv[1]), f"trained folds under {argv[1]}"
        folder = folder or (argv[1] if os.path.isdir(argv[1]) else os.path.dirname(argv[1]))
    else:
        hparams_file, _, overrides = sb.parse_arguments(argv)
        rows, output_folder = asr_rows(hparams_file, overrides)
        source = f"the ASR path of {os.path.basename(hparams_file)} before SER training"
        folder = folder or os.path.join(output_folder, "wer_analysis")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "wer_rows.json"), "w") as f:
        json.dump(rows, f, indent=1)
    text = format_tables(rows, source)
    with open(os.path.join(folder, "wer_tables.md"), "w") as f:
        f.write(text)
    print(text)
    print(f"[wer_analysis] {folder}/wer_tables.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
