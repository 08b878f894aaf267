"""Metrics against hand-computed values."""

import pytest

from speechbrain_ext import metrics


def test_wa_ua_on_imbalanced_case():
    # 8 neutral (6 right), 2 angry (2 right): WA = 8/10, UA = (6/8 + 2/2) / 2
    y_true = ["neu"] * 8 + ["ang"] * 2
    y_pred = ["neu"] * 6 + ["ang"] * 2 + ["ang"] * 2
    assert metrics.weighted_accuracy(y_true, y_pred) == pytest.approx(0.8)
    assert metrics.unweighted_accuracy(y_true, y_pred) == pytest.approx(0.875)


def test_ua_ignores_classes_only_predicted():
    # "sad" is never true: UA averages over ang and neu only
    assert metrics.unweighted_accuracy(["ang", "neu"], ["sad", "neu"]) == pytest.approx(0.5)


def test_confusion_rows_are_true_labels():
    cm = metrics.confusion_matrix(["ang", "ang", "hap", "sad"], ["hap", "ang", "hap", "ang"],
                                  ["ang", "hap", "sad"])
    assert cm == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]


def test_wer_counts_substitutions_insertions_deletions():
    refs = ["the cat sat", "hello world"]
    hyps = ["the bat sat down", "hello"]  # 1 sub + 1 ins, 1 del: 3 edits / 5 words
    assert metrics.word_error_rate(refs, hyps) == pytest.approx(60.0)
    assert metrics.word_error_rate(["a b"], ["a b"]) == 0.0


def test_wer_by_group_pools_within_group():
    refs = ["a b c d", "e f", "g h"]
    hyps = ["a b c d", "e x", "x x"]
    groups = ["neu", "sad", "sad"]  # sad: 3 edits / 4 words
    assert metrics.wer_by_group(refs, hyps, groups) == {"neu": 0.0, "sad": 75.0}


@pytest.mark.parametrize("n,bucket", [(1, "<=10"), (10, "<=10"), (11, "11-20"), (20, "11-20"),
                                      (21, "21-30"), (30, "21-30"), (31, ">30")])
def test_word_count_buckets(n, bucket):
    assert metrics.word_count_bucket(" ".join(["w"] * n)) == bucket


def test_summarize_with_and_without_asr():
    rows = [{"id": "a", "emo": "ang", "emo_pred": "ang"},
            {"id": "b", "emo": "sad", "emo_pred": "ang"}]
    out = metrics.summarize(rows)
    assert out["WA"] == pytest.approx(50.0) and out["UA"] == pytest.approx(50.0)
    assert "WER" not in out
    rows[0].update(words="one two", words_pred="one")
    rows[1].update(words="three four", words_pred="three four")
    out = metrics.summarize(rows)
    assert out["WER"] == pytest.approx(25.0)
    assert out["WER_by_emotion"] == {"ang": 50.0, "sad": 0.0}
    assert out["WER_by_length"] == {"<=10": 25.0}


def test_predictions_roundtrip_and_validation(tmp_path):
    path = str(tmp_path / "predictions.json")
    rows = [{"id": "u1", "speaker": "Ses01F", "emo": "neu", "emo_pred": "hap"}]
    metrics.write_predictions(path, rows)
    assert metrics.read_predictions(path) == rows
    with pytest.raises(ValueError, match="emo_pred"):
        metrics.write_predictions(path, [{"id": "u1", "emo": "neu"}])


def test_empty_inputs_are_errors():
    with pytest.raises(ValueError):
        metrics.weighted_accuracy([], [])
    with pytest.raises(ValueError):
        metrics.word_error_rate([""], ["a"])
