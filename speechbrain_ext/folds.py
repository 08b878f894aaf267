"""Cross-validation folds, with the validation rule of each scheme.

============== ===== ========================================= ================================
scheme         folds test fold                                 validation set
============== ===== ========================================= ================================
session5       5     one IEMOCAP session (both speakers)       seeded 20 % of the training turns
speaker10      10    one IEMOCAP speaker (Ses01F ... Ses05M)   the other speaker of that session
random5        5     a seeded fifth of all turns               seeded 10 % of the training turns
speakers<K>    K     a seeded K-th of the speakers (any corpus) seeded 20 % of the training
                                                               speakers
emobox6        6     four RAVDESS actors, EmoBox's fold k      seeded 20 % of the training
                                                               actors (4 of 20)
============== ===== ========================================= ================================

``session5`` follows SUPERB / EmoBox, ``speaker10`` the upstream SpeechBrain IEMOCAP
recipe. ``random5`` is **speaker-dependent**: test speakers are also training
speakers (the protocol of the E-transformer paper, Hu et al., Interspeech 2022,
and of Table 5 of Feng, Ueno, Kawahara, Interspeech 2020). All the other
schemes never share a speaker between test and training or validation.

``speakers<K>`` (``speakers5``, ``speakers6``, ...) serves any corpus with a
``speaker`` field: the sorted speakers are shuffled with the seed and dealt into K
groups of near-equal size. ``emobox6`` is RAVDESS's standard: the test actors of
the six folds of EmoBox (Ma et al., Interspeech 2024, arXiv:2406.07162), so that
results sit beside its published benchmark; EmoBox trains on the other 20 actors
without a validation set, here 4 of them validate.

Folds are numbered from 1. Model selection uses ``valid`` only, never ``test``.

Example
-------
>>> data = {f"Ses0{s}{g}_impro01_{g}{i:03d}": {"speaker": f"Ses0{s}{g}", "session": s}
...         for s in range(1, 6) for g in "FM" for i in range(10)}
>>> split = split_fold(data, "speaker10", 3)
>>> sorted({data[i]["speaker"] for i in split["test"]}), len(split["train"])
(['Ses02F'], 80)
>>> sorted({data[i]["speaker"] for i in split["valid"]})
['Ses02M']
>>> split = split_fold(data, "speakers5", 1)
>>> len({data[i]["speaker"] for i in split["test"]}), len({data[i]["speaker"] for i in split["valid"]})
(2, 2)
"""

import json
import os
import random
import re

from speechbrain_ext.files import write_json_atomic

N_FOLDS = {"session5": 5, "speaker10": 10, "random5": 5, "emobox6": 6}
SPEAKER_INDEPENDENT = {"session5": True, "speaker10": True, "random5": False, "emobox6": True}
SPEAKERS = [f"Ses0{s}{g}" for s in range(1, 6) for g in "FM"]
VALID_SHARE = {"session5": 0.2, "random5": 0.1, "speakers": 0.2}
SPEAKER_GROUPS = re.compile(r"^speakers(\d+)$")
# EmoBox's RAVDESS folds (data/ravdess/fold_k/ravdess_test_fold_k.jsonl): test actors.
EMOBOX_RAVDESS_TEST_ACTORS = {1: (1, 11, 20, 21), 2: (4, 10, 12, 14), 3: (8, 9, 19, 23),
                              4: (3, 5, 7, 24), 5: (2, 15, 16, 18), 6: (6, 13, 17, 22)}


def n_folds(scheme):
    """Number of folds of a scheme; raises ``ValueError`` for an unknown one.

    Example
    -------
    >>> n_folds("speaker10"), n_folds("speakers6")
    (10, 6)
    """
    match = SPEAKER_GROUPS.match(scheme)
    if match and int(match[1]) >= 2:
        return int(match[1])
    if scheme not in N_FOLDS:
        raise ValueError(f"unknown fold scheme {scheme!r}; choose from {sorted(N_FOLDS)} "
                         "or speakers<K> (speaker-grouped K-fold, K >= 2)")
    return N_FOLDS[scheme]


def speaker_independent(scheme):
    """Whether no test speaker is ever in training or validation."""
    n_folds(scheme)
    return SPEAKER_INDEPENDENT.get(scheme, True)


def _check(scheme, fold):
    if not 1 <= int(fold) <= n_folds(scheme):
        raise ValueError(f"fold {fold} out of range for {scheme} (1..{n_folds(scheme)})")


def _sample(ids, share, seed):
    ids = sorted(ids)
    random.Random(seed).shuffle(ids)
    n = max(1, round(share * len(ids)))
    return set(ids[:n])


def _speaker_split(data, ids, test_speakers, seed):
    """Test = the turns of ``test_speakers``; valid = a seeded share of the other speakers."""
    speakers = sorted({data[i]["speaker"] for i in ids})
    unknown = set(test_speakers) - set(speakers)
    if unknown:
        raise ValueError(f"test speakers {sorted(unknown)} are not in the data "
                         f"(it has {speakers[:5]}{' ...' if len(speakers) > 5 else ''})")
    rest = [s for s in speakers if s not in test_speakers]
    valid_speakers = _sample(rest, VALID_SHARE["speakers"], seed)
    test = {i for i in ids if data[i]["speaker"] in test_speakers}
    valid = {i for i in ids if data[i]["speaker"] in valid_speakers}
    return test, valid


def split_fold(data, scheme, fold, seed=1234):
    """Split the ids of a ``data.json`` dict into train / valid / test for one fold.

    Arguments
    ---------
    data : dict
        Turn id -> entry with at least ``speaker`` and ``session``.
    scheme : str
        ``session5``, ``speaker10``, ``random5``, ``emobox6`` or ``speakers<K>``.
    fold : int
        Fold number, from 1.
    seed : int
        Seeds the random validation subsets and the ``random5`` partition.

    Returns
    -------
    dict
        ``{"train": [...], "valid": [...], "test": [...]}``, sorted id lists.
    """
    _check(scheme, fold)
    fold = int(fold)
    ids = sorted(data)
    if scheme == "session5":
        if any(data[i].get("session") in (None, "") for i in ids):
            raise ValueError("session5 needs a session (1..5) on every entry (IEMOCAP); for "
                             "another corpus use speakers<K>")
        test = {i for i in ids if int(data[i]["session"]) == fold}
        rest = [i for i in ids if i not in test]
        valid = _sample(rest, VALID_SHARE[scheme], seed + fold)
    elif scheme == "speaker10":
        if not set(SPEAKERS) <= {data[i]["speaker"] for i in ids}:
            raise ValueError("speaker10 is IEMOCAP's ten speakers (Ses01F ... Ses05M); for "
                             "another corpus use speakers<K> (or emobox6 for RAVDESS)")
        test_spk = SPEAKERS[fold - 1]
        valid_spk = test_spk[:-1] + ("M" if test_spk.endswith("F") else "F")
        test = {i for i in ids if data[i]["speaker"] == test_spk}
        valid = {i for i in ids if data[i]["speaker"] == valid_spk}
    elif scheme == "emobox6":
        actors = {f"Actor_{a:02d}" for a in EMOBOX_RAVDESS_TEST_ACTORS[fold]}
        test, valid = _speaker_split(data, ids, actors, seed + fold)
    elif scheme == "random5":  # one seeded partition shared by all folds
        shuffled = list(ids)
        random.Random(seed).shuffle(shuffled)
        test = set(shuffled[fold - 1::N_FOLDS[scheme]])
        rest = [i for i in ids if i not in test]
        valid = _sample(rest, VALID_SHARE[scheme], seed + fold)
    else:  # speakers<K>: one seeded partition of the speakers shared by all folds
        speakers = sorted({data[i]["speaker"] for i in ids})
        k = n_folds(scheme)
        if len(speakers) < k:
            raise ValueError(f"{scheme} needs at least {k} speakers, the data has "
                             f"{len(speakers)}")
        random.Random(seed).shuffle(speakers)
        test, valid = _speaker_split(data, ids, set(speakers[fold - 1::k]), seed + fold)
    train = [i for i in ids if i not in test and i not in valid]
    split = {"train": train, "valid": sorted(valid), "test": sorted(test)}
    empty = [name for name, part in split.items() if not part]
    if empty:
        raise ValueError(f"{scheme} fold {fold} has an empty {'/'.join(empty)} set: "
                         "are all sessions and speakers in the manifest?")
    return split


def write_fold_manifests(data_json, scheme, fold, output_folder, seed=1234):
    """Write ``train.json``, ``valid.json``, ``test.json`` of one fold; returns their paths."""
    with open(data_json) as f:
        data = json.load(f)
    split = split_fold(data, scheme, fold, seed)
    os.makedirs(output_folder, exist_ok=True)
    paths = {}
    for name, ids in split.items():
        paths[name] = os.path.join(output_folder, f"{name}.json")
        write_json_atomic(paths[name], {i: data[i] for i in ids}, indent=2)
    return paths
