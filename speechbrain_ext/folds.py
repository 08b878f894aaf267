"""Cross-validation folds of IEMOCAP, with the validation rule of each scheme.

========== ===== ======================================== =================================
scheme     folds test fold                                validation set
========== ===== ======================================== =================================
session5   5     one session (both speakers)              seeded 20 % of the training turns
speaker10  10    one speaker (Ses01F, Ses01M, ..., Ses05M) the other speaker of that session
random5    5     a seeded fifth of all turns              seeded 10 % of the training turns
========== ===== ======================================== =================================

``session5`` follows SUPERB / EmoBox, ``speaker10`` the upstream SpeechBrain IEMOCAP
recipe. ``random5`` is **speaker-dependent**: test speakers are also training
speakers (the protocol of paper 003 and of Table 5 of paper 001). The other two
never share a speaker between test and training or validation.

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
"""

import json
import os
import random

N_FOLDS = {"session5": 5, "speaker10": 10, "random5": 5}
SPEAKER_INDEPENDENT = {"session5": True, "speaker10": True, "random5": False}
SPEAKERS = [f"Ses0{s}{g}" for s in range(1, 6) for g in "FM"]
VALID_SHARE = {"session5": 0.2, "random5": 0.1}


def _check(scheme, fold):
    if scheme not in N_FOLDS:
        raise ValueError(f"unknown fold scheme {scheme!r}; choose from {sorted(N_FOLDS)}")
    if not 1 <= int(fold) <= N_FOLDS[scheme]:
        raise ValueError(f"fold {fold} out of range for {scheme} (1..{N_FOLDS[scheme]})")


def _sample(ids, share, seed):
    ids = sorted(ids)
    random.Random(seed).shuffle(ids)
    n = max(1, round(share * len(ids)))
    return set(ids[:n])


def split_fold(data, scheme, fold, seed=1234):
    """Split the ids of a ``data.json`` dict into train / valid / test for one fold.

    Arguments
    ---------
    data : dict
        Turn id -> entry with at least ``speaker`` and ``session``.
    scheme : str
        ``session5``, ``speaker10`` or ``random5``.
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
        test = {i for i in ids if int(data[i]["session"]) == fold}
        rest = [i for i in ids if i not in test]
        valid = _sample(rest, VALID_SHARE[scheme], seed + fold)
    elif scheme == "speaker10":
        test_spk = SPEAKERS[fold - 1]
        valid_spk = test_spk[:-1] + ("M" if test_spk.endswith("F") else "F")
        test = {i for i in ids if data[i]["speaker"] == test_spk}
        valid = {i for i in ids if data[i]["speaker"] == valid_spk}
    else:  # random5: one seeded partition shared by all folds
        shuffled = list(ids)
        random.Random(seed).shuffle(shuffled)
        test = set(shuffled[fold - 1::N_FOLDS[scheme]])
        rest = [i for i in ids if i not in test]
        valid = _sample(rest, VALID_SHARE[scheme], seed + fold)
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
        tmp = paths[name] + ".tmp"
        with open(tmp, "w") as f:
            json.dump({i: data[i] for i in ids}, f, indent=2)
        os.replace(tmp, paths[name])
    return paths
