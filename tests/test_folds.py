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


@pytest.fixture(scope="module")
def actors():
    """A RAVDESS-shaped data dict: 24 actors, 10 files each."""
    return {f"03-01-01-01-01-{i:02d}-{a:02d}": {"speaker": f"Actor_{a:02d}"}
            for a in range(1, 25) for i in range(10)}


@pytest.mark.parametrize("scheme", ["session5", "speaker10", "random5", "speakers3",
                                    "speakers10", "emobox6", "speakers24"])
def test_every_fold_partitions_the_data(data, actors, scheme):
    data = actors if scheme in ("emobox6", "speakers24") else data
    tests = []
    for k in range(1, folds.n_folds(scheme) + 1):
        split = folds.split_fold(data, scheme, k)
        train, valid, test = (set(split[n]) for n in ("train", "valid", "test"))
        assert train and valid and test
        assert not (train & valid) and not (train & test) and not (valid & test)
        assert train | valid | test == set(data)
        tests.append(test)
        if folds.speaker_independent(scheme):
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
    assert folds.speaker_independent("random5") is False
    split = folds.split_fold(data, "random5", 1)
    assert _speakers(data, split["test"]) & _speakers(data, split["train"])
    n_pool = len(split["train"]) + len(split["valid"])
    assert len(split["valid"]) == round(0.1 * n_pool)


def test_emobox6_rules(actors):
    """EmoBox's RAVDESS test actors; 4 of the other 20 actors validate, 16 train."""
    split = folds.split_fold(actors, "emobox6", 1)
    assert _speakers(actors, split["test"]) == {"Actor_01", "Actor_11", "Actor_20", "Actor_21"}
    assert len(_speakers(actors, split["valid"])) == 4
    assert len(_speakers(actors, split["train"])) == 16
    with pytest.raises(ValueError, match="not in the data"):
        folds.split_fold({"u1": {"speaker": "Ses01F"}, "u2": {"speaker": "Ses01M"}}, "emobox6", 1)


def test_speaker_groups_rules(data, actors):
    """speakers<K>: the speakers dealt into K groups; validation = 20 % of the others."""
    groups = [_speakers(actors, folds.split_fold(actors, "speakers6", k)["test"])
              for k in range(1, 7)]
    assert [len(g) for g in groups] == [4] * 6
    split = folds.split_fold(actors, "speakers6", 2)
    assert len(_speakers(actors, split["valid"])) == 4  # round(0.2 * 20)
    assert folds.split_fold(actors, "speakers6", 2, seed=1) != split
    with pytest.raises(ValueError, match="IEMOCAP's ten speakers"):
        folds.split_fold(actors, "speaker10", 1)
    with pytest.raises(ValueError, match="needs a session"):
        folds.split_fold(actors, "session5", 1)
    with pytest.raises(ValueError, match="at least 25 speakers"):
        folds.split_fold(actors, "speakers25", 1)


def test_seeded(data):
    assert folds.split_fold(data, "random5", 3, seed=7) == folds.split_fold(data, "random5", 3, seed=7)
    assert folds.split_fold(data, "random5", 3, seed=7) != folds.split_fold(data, "random5", 3, seed=8)


def test_bad_scheme_or_fold(data):
    with pytest.raises(ValueError, match="unknown fold scheme"):
        folds.split_fold(data, "session4", 1)
    with pytest.raises(ValueError, match="unknown fold scheme"):
        folds.split_fold(data, "speakers1", 1)
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
