"""Folds: disjoint splits, no speaker shared between test and training (except random5)."""

import json

import pytest

from data_prep.iemocap_prepare import prepare_iemocap
from speechbrain_ext import folds


@pytest.fixture(scope="module")
def data(iemocap, tmp_path_factory):
    path = prepare_iemocap(iemocap, str(tmp_path_factory.mktemp("prep")))
    return json.load(open(path))


def _speakers(data, ids):
    return {data[i]["speaker"] for i in ids}


@pytest.mark.parametrize("scheme", sorted(folds.N_FOLDS))
def test_every_fold_partitions_the_data(data, scheme):
    tests = []
    for k in range(1, folds.N_FOLDS[scheme] + 1):
        split = folds.split_fold(data, scheme, k)
        train, valid, test = (set(split[n]) for n in ("train", "valid", "test"))
        assert train and valid and test
        assert not (train & valid) and not (train & test) and not (valid & test)
        assert train | valid | test == set(data)
        tests.append(test)
        if folds.SPEAKER_INDEPENDENT[scheme]:
            assert not _speakers(data, test) & _speakers(data, train | valid), (scheme, k)
    # the test folds cover every turn exactly once
    assert sum(len(t) for t in tests) == len(data) and set().union(*tests) == set(data)


def test_session5_rules(data):
    split = folds.split_fold(data, "session5", 2)
    assert _speakers(data, split["test"]) == {"Ses02F", "Ses02M"}
    n_pool = len(split["train"]) + len(split["valid"])
    assert len(split["valid"]) == round(0.2 * n_pool)


def test_speaker10_rules(data):
    for k, speaker in enumerate(folds.SPEAKERS, 1):
        split = folds.split_fold(data, "speaker10", k)
        other = speaker[:-1] + ("M" if speaker[-1] == "F" else "F")
        assert _speakers(data, split["test"]) == {speaker}
        assert _speakers(data, split["valid"]) == {other}
        assert len(_speakers(data, split["train"])) == 8


def test_random5_is_speaker_dependent_and_says_so(data):
    assert folds.SPEAKER_INDEPENDENT["random5"] is False
    split = folds.split_fold(data, "random5", 1)
    assert _speakers(data, split["test"]) & _speakers(data, split["train"])
    n_pool = len(split["train"]) + len(split["valid"])
    assert len(split["valid"]) == round(0.1 * n_pool)


def test_seeded(data):
    assert folds.split_fold(data, "random5", 3, seed=7) == folds.split_fold(data, "random5", 3, seed=7)
    assert folds.split_fold(data, "random5", 3, seed=7) != folds.split_fold(data, "random5", 3, seed=8)


def test_bad_scheme_or_fold(data):
    with pytest.raises(ValueError, match="unknown fold scheme"):
        folds.split_fold(data, "session4", 1)
    with pytest.raises(ValueError, match="out of range"):
        folds.split_fold(data, "speaker10", 11)
    only_session1 = {i: t for i, t in data.items() if t["session"] == 1}
    with pytest.raises(ValueError, match="empty"):
        folds.split_fold(only_session1, "session5", 2)


def test_write_fold_manifests(data, tmp_path):
    data_json = tmp_path / "data.json"
    data_json.write_text(json.dumps(data))
    paths = folds.write_fold_manifests(str(data_json), "speaker10", 4, str(tmp_path / "fold4"))
    test = json.load(open(paths["test"]))
    assert {t["speaker"] for t in test.values()} == {"Ses02M"}
    assert sum(len(json.load(open(p))) for p in paths.values()) == len(data)
