"""SER and ASR metrics, and the per-utterance predictions format shared by all recipes.

A recipe writes ``predictions.json`` in its output folder after the test stage:
a list of rows, one per test utterance (and test condition)::

    {"id": "Ses01F_impro01_F000", "speaker": "Ses01F", "emo": "neu", "emo_pred": "hap",
     "words": "EXCUSE ME", "words_pred": "EXCUSE ME",      # optional, ASR recipes
     "condition": "clean"}                                 # optional, noise studies

The fold runner (:mod:`speechbrain_ext.fold_runner`) reads these files and summarises them
with :func:`summarize`.

Example
-------
>>> y_true = ["ang", "ang", "hap", "neu", "neu", "neu"]
>>> y_pred = ["ang", "hap", "hap", "neu", "neu", "sad"]
>>> round(weighted_accuracy(y_true, y_pred), 4)     # 4 of 6
0.6667
>>> round(unweighted_accuracy(y_true, y_pred), 4)   # mean(1/2, 1/1, 2/3)
0.7222
>>> round(word_error_rate(["a b c d"], ["a x c"]), 2)   # 1 sub + 1 del over 4 words
50.0
"""

import json
from collections import defaultdict

from speechbrain.utils.edit_distance import wer_details_for_batch

from speechbrain_ext.files import write_json_atomic

WORD_COUNT_BUCKETS = ("<=10", "11-20", "21-30", ">30")


def weighted_accuracy(y_true, y_pred):
    """WA: share of utterances classified correctly (0-1)."""
    if len(y_true) != len(y_pred) or not y_true:
        raise ValueError("weighted_accuracy needs two non-empty lists of equal length")
    return sum(t == p for t, p in zip(y_true, y_pred)) / len(y_true)


def per_class_recall(y_true, y_pred):
    """Recall of every class present in ``y_true``: dict label -> recall (0-1)."""
    hits, totals = defaultdict(int), defaultdict(int)
    for t, p in zip(y_true, y_pred):
        totals[t] += 1
        hits[t] += t == p
    return {label: hits[label] / totals[label] for label in sorted(totals)}


def unweighted_accuracy(y_true, y_pred):
    """UA (also UAR): mean over the true classes of their recall (0-1)."""
    if len(y_true) != len(y_pred) or not y_true:
        raise ValueError("unweighted_accuracy needs two non-empty lists of equal length")
    recalls = per_class_recall(y_true, y_pred)
    return sum(recalls.values()) / len(recalls)


def confusion_matrix(y_true, y_pred, labels):
    """Counts, rows = true label, columns = predicted label, in the order of ``labels``.

    Example
    -------
    >>> confusion_matrix(["a", "a", "b"], ["a", "b", "b"], ["a", "b"])
    [[1, 1], [0, 1]]
    """
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for t, p in zip(y_true, y_pred):
        matrix[index[t]][index[p]] += 1
    return matrix


def _edits(refs, hyps):
    details = wer_details_for_batch(
        list(range(len(refs))), [r.split() for r in refs], [h.split() for h in hyps]
    )
    return [(d["num_edits"], d["num_ref_tokens"]) for d in details]


def word_error_rate(refs, hyps):
    """Corpus WER in percent: all edits over all reference words (SpeechBrain's edit distance)."""
    edits = _edits(refs, hyps)
    n_words = sum(n for _, n in edits)
    if n_words == 0:
        raise ValueError("word_error_rate: the references hold no word")
    return 100.0 * sum(e for e, _ in edits) / n_words


def word_count_bucket(text):
    """Bucket of a reference by its number of words: <=10, 11-20, 21-30, >30.

    Example
    -------
    >>> [word_count_bucket(" ".join("w" * n)) for n in (10, 11, 30, 31)]
    ['<=10', '11-20', '21-30', '>30']
    """
    n = len(text.split())
    return "<=10" if n <= 10 else "11-20" if n <= 20 else "21-30" if n <= 30 else ">30"


def wer_by_group(refs, hyps, groups):
    """Corpus WER (percent) within each group: dict group -> WER.

    Example
    -------
    >>> wer_by_group(["a b", "c d"], ["a b", "c x"], ["hap", "sad"])
    {'hap': 0.0, 'sad': 50.0}
    """
    edits, words = defaultdict(int), defaultdict(int)
    for (e, n), g in zip(_edits(refs, hyps), groups):
        edits[g] += e
        words[g] += n
    return {g: 100.0 * edits[g] / words[g] for g in sorted(words) if words[g] > 0}


def summarize(rows):
    """Metrics of a list of prediction rows (one condition).

    Returns, when the rows carry ``emo_pred`` (SER), WA and UA in percent, the
    confusion matrix and per-class recall; when they carry ``words`` /
    ``words_pred`` (ASR), WER overall, per emotion and per word-count bucket.
    An ASR-only model writes ``emo`` (for WER by emotion) and no ``emo_pred``.
    """
    if not rows:
        raise ValueError("summarize: no prediction rows")
    out = {"n": len(rows)}
    ser = [r for r in rows if r.get("emo_pred") is not None]
    if ser:
        y_true = [r["emo"] for r in ser]
        y_pred = [r["emo_pred"] for r in ser]
        labels = sorted(set(y_true) | set(y_pred))
        out.update({
            "WA": 100.0 * weighted_accuracy(y_true, y_pred),
            "UA": 100.0 * unweighted_accuracy(y_true, y_pred),
            "recall": {k: 100.0 * v for k, v in per_class_recall(y_true, y_pred).items()},
            "labels": labels,
            "confusion": confusion_matrix(y_true, y_pred, labels),
        })
    asr = [r for r in rows if r.get("words_pred") is not None and r.get("words")]
    if asr:
        refs = [r["words"] for r in asr]
        hyps = [r["words_pred"] for r in asr]
        out["WER"] = word_error_rate(refs, hyps)
        out["WER_by_emotion"] = wer_by_group(refs, hyps, [r["emo"] for r in asr])
        out["WER_by_length"] = wer_by_group(refs, hyps, [word_count_bucket(t) for t in refs])
    if not ser and not asr:
        raise ValueError("summarize: the rows hold neither emo_pred nor words/words_pred")
    return out


def write_predictions(path, rows):
    """Write prediction rows atomically (a fold is finished once this file exists)."""
    for row in rows:
        missing = {"id", "emo"} - set(row)
        if missing or ("emo_pred" not in row and "words_pred" not in row):
            raise ValueError(f"prediction row {row} lacks {sorted(missing) or 'a prediction'}"
                             " (emo_pred and/or words_pred)")
    write_json_atomic(path, rows, indent=1)


def read_predictions(path):
    """Read the rows written by :func:`write_predictions`."""
    with open(path) as f:
        return json.load(f)
