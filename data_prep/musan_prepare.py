"""MUSAN preparation: noise CSVs in SpeechBrain's AddNoise format, split into disjoint pools.

Reads the layout of the MUSAN download (openslr.org/17), never writes into it::

    musan/noise/{free-sound,sound-bible}/*.wav
    musan/music/{fma,fma-western-art,hd-classical,jamendo,rfm}/*.wav
    musan/speech/{librivox,us-gov}/*.wav          (+ ANNOTATIONS, README, LICENSE)

and writes, for each type, ``<type>_train.csv`` and ``<type>_test.csv`` into
``output_folder`` with the columns of ``speechbrain.augment.time_domain.AddNoise``
(``ID,duration,wav,wav_format,wav_opts``; absolute paths). ``speech`` files are
the sources of babble. The train pool feeds on-the-fly noisy training, the test
pool the fixed test matrix (``data_prep.noisy_testsets``); no file is in both.

A file goes to the test pool when a hash of ``(seed, file id)`` falls below
``test_fraction``, so a file keeps its pool when files are added to the corpus.
Only on a corpus so small that a pool would hold fewer files than mixing needs
(1 noise or music file, 3 speech files for babble) are the files nearest the
threshold moved across; the real MUSAN never needs it.

Every file is read once: unreadable and silent files stop the preparation with
their path (``exclude`` skips named file ids). Multichannel files and other
sample rates are accepted and mixed down / resampled when they are loaded
(``speechbrain_ext.noise``). SpeechBrain's own augmentation preparation
(``speechbrain.augment.preparation``) rewrites multichannel files and deletes
originals when it chunks them, so it is not used on a user's corpus.

Command line::

    python -m data_prep.musan_prepare --musan_folder /data/musan --output_folder prep/musan \\
        [--test_fraction 0.2] [--seed 0] [--exclude noise-free-sound-0001,...]

Example
-------
>>> import tempfile
>>> from data_prep.synthetic import generate
>>> musan = generate(tempfile.mkdtemp(), size="tiny", corpora=["musan"])["musan"]
>>> csvs = prepare_musan(musan, tempfile.mkdtemp())
>>> sorted(csvs), sorted(csvs["speech"])
(['music', 'noise', 'speech'], ['test', 'train'])
>>> open(csvs["noise"]["train"]).readline().strip()
'ID,duration,wav,wav_format,wav_opts'
"""

import argparse
import csv
import hashlib
import json
import logging
import os
import sys

import numpy as np
import soundfile as sf
from tqdm import tqdm

from speechbrain_ext.files import atomic_open, file_lock

logger = logging.getLogger(__name__)

TYPES = ("noise", "music", "speech")
POOLS = ("train", "test")
# The fewest files a pool must hold: one noise or music file, three babble talkers.
MIN_POOL_FILES = {"noise": 1, "music": 1, "speech": 3}
SILENCE_RMS = 1e-5  # -100 dBFS: digital silence, or a file that is as good as silent
CSV_FIELDS = ["ID", "duration", "wav", "wav_format", "wav_opts"]


class MUSANPrepError(ValueError):
    """The MUSAN folder or one of its files cannot be used."""


def pool_score(file_id, seed):
    """A number in [0, 1) fixed by (seed, file id): below ``test_fraction`` = test pool.

    Example
    -------
    >>> pool_score("noise-free-sound-0000", 0) == pool_score("noise-free-sound-0000", 0)
    True
    >>> 0 <= pool_score("noise-free-sound-0000", 1) < 1
    True
    """
    digest = hashlib.sha256(f"{seed}:{file_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def split_pools(file_ids, test_fraction, seed, min_files=1):
    """``{"train": [...], "test": [...]}``: disjoint, stable as files are added.

    Example
    -------
    >>> pools = split_pools([f"f{i}" for i in range(100)], 0.2, seed=0)
    >>> len(pools["train"]) + len(pools["test"]), set(pools["train"]) & set(pools["test"])
    (100, set())
    >>> sorted(len(p) for p in split_pools(["a", "b", "c", "d"], 0.2, 0, min_files=2).values())
    [2, 2]
    """
    if len(file_ids) < 2 * min_files:
        raise MUSANPrepError(f"{len(file_ids)} files cannot fill a train and a test pool of "
                             f"at least {min_files} file(s) each")
    ranked = sorted(file_ids, key=lambda i: pool_score(i, seed))
    n_test = sum(pool_score(i, seed) < test_fraction for i in file_ids)
    n_test = min(max(n_test, min_files), len(ranked) - min_files)  # tiny corpora only
    return {"train": sorted(ranked[n_test:]), "test": sorted(ranked[:n_test])}


def _scan_file(path):
    """Duration (s), sample rate, channels of a wav; raises on unreadable or silent files."""
    try:
        info = sf.info(path)
        square_sum, frames = 0.0, 0
        for block in sf.blocks(path, blocksize=1 << 18, dtype="float32", always_2d=True):
            square_sum += float(np.square(block, dtype=np.float64).sum())
            frames += block.size
    except Exception as err:  # soundfile raises RuntimeError / LibsndfileError
        raise MUSANPrepError(f"unreadable audio file {path}: {err}") from err
    if frames == 0 or (square_sum / frames) ** 0.5 < SILENCE_RMS:
        file_id = os.path.splitext(os.path.basename(path))[0]
        raise MUSANPrepError(f"silent audio file {path} (RMS below {SILENCE_RMS}): it cannot "
                             f"be mixed at any SNR; remove it or pass exclude=['{file_id}']")
    return info.frames / info.samplerate, info.samplerate, info.channels


def _list_type(musan_folder, kind, exclude):
    """Sorted (id, path) of the wav files of one type (all subsets)."""
    folder = os.path.join(musan_folder, kind)
    files = []
    for sub, _, names in sorted(os.walk(folder)):
        for name in sorted(names):
            file_id, ext = os.path.splitext(name)
            if ext.lower() == ".wav" and not name.startswith(".") and file_id not in exclude:
                files.append((file_id, os.path.join(sub, name)))
    if not files:
        raise MUSANPrepError(f"no .wav file under {folder}: an empty type cannot be mixed")
    ids = [i for i, _ in files]
    if len(set(ids)) != len(ids):
        raise MUSANPrepError(f"duplicate file names under {folder}")
    return files


def _options(musan_folder, test_fraction, seed, exclude):
    return {"musan_folder": os.path.abspath(musan_folder), "test_fraction": test_fraction,
            "seed": seed, "exclude": sorted(exclude)}


def prepare_musan(musan_folder, output_folder, test_fraction=0.2, seed=0, exclude=(),
                  skip_if_done=True):
    """Writes ``<type>_<pool>.csv`` for the three types; returns ``{type: {pool: path}}``.

    Arguments
    ---------
    musan_folder : str
        The ``musan`` folder (holding ``noise``, ``music``, ``speech``); read only.
    output_folder : str
        Where the CSVs and ``prep_options.json`` are written.
    test_fraction : float
        Share of each type's files kept for the test pool.
    seed : int
        Seed of the pool split.
    exclude : sequence of str
        File ids (names without ``.wav``) to leave out, e.g. a silent file.
    skip_if_done : bool
        Reuse CSVs prepared with the same options.

    The folds of a CV run share ``output_folder`` and may prepare it at once (a job
    array): the first process prepares under a lock (``<output_folder>.lock``), the
    others wait, then reuse its CSVs.
    """
    if not 0 < test_fraction < 1:
        raise MUSANPrepError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if not os.path.isdir(musan_folder):
        raise MUSANPrepError(f"MUSAN folder {musan_folder} does not exist")
    with file_lock(os.path.normpath(output_folder) + ".lock"):  # beside it: no folder on error
        return _prepare_musan(musan_folder, output_folder, test_fraction, seed,
                              set(exclude or ()), skip_if_done)


def _prepare_musan(musan_folder, output_folder, test_fraction, seed, exclude, skip_if_done):
    paths = {k: {p: os.path.join(output_folder, f"{k}_{p}.csv") for p in POOLS} for k in TYPES}
    opts = _options(musan_folder, test_fraction, seed, exclude)
    opts_path = os.path.join(output_folder, "prep_options.json")
    done = all(os.path.exists(p) for k in TYPES for p in paths[k].values())
    if skip_if_done and done and os.path.exists(opts_path):
        with open(opts_path) as f:
            if json.load(f) == opts:
                logger.info("MUSAN already prepared in %s, skipping", output_folder)
                return paths

    for kind in TYPES:
        if not os.path.isdir(os.path.join(musan_folder, kind)):
            raise MUSANPrepError(
                f"missing folder {os.path.join(musan_folder, kind)}: is {musan_folder} the "
                f"'musan' folder of the MUSAN download (with {', '.join(TYPES)} inside)?")
    listed = {kind: _list_type(musan_folder, kind, exclude) for kind in TYPES}
    rows, converted = {}, 0
    n_files = sum(map(len, listed.values()))
    with tqdm(total=n_files, desc="MUSAN: checking files", disable=n_files < 200) as bar:
        for kind, files in listed.items():
            for file_id, path in files:
                duration, rate, channels = _scan_file(path)
                converted += rate != 16000 or channels != 1
                rows[file_id] = {"ID": file_id, "duration": f"{duration:.3f}",
                                 "wav": os.path.abspath(path), "wav_format": "wav",
                                 "wav_opts": ""}
                bar.update()
    if converted:
        logger.info("MUSAN: %d files are not 16 kHz mono; they are mixed down and resampled "
                    "when loaded", converted)

    os.makedirs(output_folder, exist_ok=True)
    for kind, files in listed.items():
        pools = split_pools([i for i, _ in files], test_fraction, seed, MIN_POOL_FILES[kind])
        for pool, ids in pools.items():
            _write_atomic(paths[kind][pool], lambda f: _write_csv(f, [rows[i] for i in ids]))
        logger.info("MUSAN %s: %d train files, %d test files", kind, len(pools["train"]),
                    len(pools["test"]))
    _write_atomic(opts_path, lambda f: json.dump(opts, f, indent=2))
    return paths


def _write_csv(f, rows):
    writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def _write_atomic(path, write):
    with atomic_open(path, newline="") as f:
        write(f)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Prepare MUSAN noise CSVs (train/test pools).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--musan_folder", required=True, help="path to the 'musan' folder")
    parser.add_argument("--output_folder", required=True, help="where the CSVs are written")
    parser.add_argument("--test_fraction", type=float, default=0.2,
                        help="share of each type's files in the test pool")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pool split")
    parser.add_argument("--exclude", default="", help="comma-separated file ids to leave out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        paths = prepare_musan(args.musan_folder, args.output_folder, args.test_fraction,
                              args.seed, [i for i in args.exclude.split(",") if i],
                              skip_if_done=False)
    except MUSANPrepError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for kind in TYPES:
        print(" ".join(paths[kind].values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
