"""The fixed noisy test matrix: every test utterance under 7 conditions, built once, seeded.

Conditions (Bansal et al. 2023, section 4.1): ``clean``, and ``noise``, ``music``,
``babble`` at 15 and 5 dB SNR (``noise_15`` ... ``babble_5``), drawn from the MUSAN
*test* pools of ``data_prep.musan_prepare`` only.

Writes into ``out``::

    <condition>/<utterance id>.wav      16-bit, 16 kHz (not for clean)
    <condition>.json                    the input manifest's entries, with ``wav``
                                        pointing at the noisy file and the mixing
                                        record: condition, noise_type, snr_db,
                                        noise_ids, noise_files, noise_offsets, gain
    options.json                        what the matrix was built from

``clean.json`` points at the original wavs (no copy). Noisy wavs live under a
``{matrix_root}`` placeholder, so with ``replacements={"data_root": ...,
"matrix_root": out}`` a ``DynamicItemDataset`` reads any condition.

Each (utterance, condition) draws from its own generator seeded by
``(seed, utterance id, condition)``: the same inputs give byte-identical outputs,
and an utterance gets the same noise whichever manifest (fold) it comes in. The
SNR is set on the utterance's samples; when the mixture would clip, speech and
noise are scaled down together (``gain`` < 1, SNR unchanged). Processes that build
into the same ``out`` at once (the models of a study share one matrix per fold) take
turns under a lock beside it: the first builds, the others find it built.

Command line::

    python -m data_prep.noisy_testsets --manifest prep/data.json --data_root /data/IEMOCAP_full_release \\
        --noise_csvs prep/musan --out noisy_test [--seed 0] [--conditions clean,noise_5]

Example
-------
>>> import tempfile, json
>>> from data_prep.synthetic import generate
>>> from data_prep.iemocap_prepare import prepare_iemocap
>>> from data_prep.musan_prepare import prepare_musan
>>> corpora = generate(tempfile.mkdtemp(), size="tiny", corpora=["iemocap", "musan"])
>>> data = prepare_iemocap(corpora["iemocap"], tempfile.mkdtemp())
>>> csv_folder = tempfile.mkdtemp()
>>> _ = prepare_musan(corpora["musan"], csv_folder)
>>> out = build_noisy_testsets(data, csv_folder, tempfile.mkdtemp(),
...                            replacements={"data_root": corpora["iemocap"]},
...                            conditions=["clean", "babble_5"], limit=2)
>>> entry = next(iter(json.load(open(out["babble_5"])).values()))
>>> entry["snr_db"], entry["noise_type"], entry["wav"].startswith("{matrix_root}/babble_5/")
(5.0, 'babble', True)
"""

import argparse
import hashlib
import json
import logging
import os
import random
import sys

import numpy as np
import soundfile as sf
from tqdm import tqdm

from speechbrain_ext.audio import read_audio
from speechbrain_ext.files import file_lock, write_json_atomic
from speechbrain_ext.noise import MusanMixer, SilentSignalError, signal_power

logger = logging.getLogger(__name__)

CONDITIONS = {
    "clean": (None, None),
    "noise_15": ("noise", 15.0), "noise_5": ("noise", 5.0),
    "music_15": ("music", 15.0), "music_5": ("music", 5.0),
    "babble_15": ("babble", 15.0), "babble_5": ("babble", 5.0),
}
PEAK = 0.99  # largest sample value written, below 16-bit full scale


def condition_label(condition):
    """The paper's name of a condition, e.g. ``SNR 5 Music``.

    Example
    -------
    >>> condition_label("babble_15"), condition_label("clean")
    ('SNR 15 Speech', 'Clean')
    """
    noise_type, snr = CONDITIONS[condition]
    if noise_type is None:
        return "Clean"
    name = {"noise": "Noise", "music": "Music", "babble": "Speech"}[noise_type]
    return f"SNR {snr:g} {name}"


def _file_digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _resolve(path, replacements):
    for key, value in replacements.items():
        path = path.replace("{" + key + "}", value)
    return path


def build_noisy_testsets(manifest, noise_csvs, out, seed=0, conditions=tuple(CONDITIONS),
                         replacements=None, sample_rate=16000, limit=None, skip_if_done=True):
    """Builds the test matrix of ``manifest``; returns ``{condition: json path}``.

    Arguments
    ---------
    manifest : str
        A SpeechBrain JSON manifest (e.g. ``data.json`` or a fold's ``test.json``).
    noise_csvs : str
        Folder of ``musan_prepare``'s CSVs; only the ``*_test.csv`` pools are used.
    out : str
        Output folder.
    seed : int
        Seed of the noise draws.
    conditions : sequence of str
        Names from ``CONDITIONS``.
    replacements : dict, optional
        Placeholders in the manifest's ``wav`` fields, e.g. ``{"data_root": path}``.
    sample_rate : int
        The rate every utterance must have.
    limit : int, optional
        Only the first ``limit`` utterances (quick looks, tests).
    skip_if_done : bool
        Reuse a matrix built from the same inputs.
    """
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        raise ValueError(f"unknown test condition(s) {unknown}; expected some of "
                         f"{list(CONDITIONS)}")
    replacements = dict(replacements or {})
    with open(manifest) as f:
        data = json.load(f)
    ids = sorted(data)[:limit]
    types = sorted({CONDITIONS[c][0] for c in conditions} - {None})
    csv_names = {"noise": "noise_test.csv", "music": "music_test.csv",
                 "babble": "speech_test.csv"}
    csvs = {t: os.path.join(noise_csvs, csv_names[t]) for t in types}
    for path in csvs.values():
        if not os.path.isfile(path):
            raise FileNotFoundError(f"missing {path}: run data_prep.musan_prepare first")
    options = {"manifest_sha256": _file_digest(manifest), "ids": len(ids), "seed": seed,
               "conditions": list(conditions), "sample_rate": sample_rate,
               "noise_csvs_sha256": {t: _file_digest(p) for t, p in csvs.items()},
               "replacements": replacements}
    paths = {c: os.path.join(out, f"{c}.json") for c in conditions}
    options_path = os.path.join(out, "options.json")
    # Models of a study that share one matrix per fold may start together: the first
    # builds it under the lock, the others wait, then find it built.
    with file_lock(os.path.normpath(out) + ".lock"):
        if skip_if_done and os.path.exists(options_path) and all(map(os.path.exists,
                                                                     paths.values())):
            with open(options_path) as f:
                if json.load(f) == options:
                    logger.info("noisy test sets already built in %s, skipping", out)
                    return paths
        manifests = _mix_matrix(manifest, data, ids, csvs, out, seed, conditions,
                                replacements, sample_rate)
        for c, path in paths.items():
            write_json_atomic(path, manifests[c], indent=2, sort_keys=True)
        write_json_atomic(options_path, options, indent=2, sort_keys=True)
    logger.info("noisy test sets: %d utterances x %d conditions in %s", len(ids),
                len(conditions), out)
    return paths


def _mix_matrix(manifest, data, ids, csvs, out, seed, conditions, replacements, sample_rate):
    """Writes the noisy wavs of ``ids`` into ``out``; returns ``{condition: manifest}``."""
    mixer = MusanMixer(csvs.get("noise"), csvs.get("music"), csvs.get("babble"), sample_rate)
    files = {t: {row["ID"]: row["wav"] for row in pool.rows} for t, pool in mixer.pools.items()}
    manifests = {c: {} for c in conditions}
    for c in conditions:
        os.makedirs(os.path.join(out, c) if c != "clean" else out, exist_ok=True)
    for uid in tqdm(ids, desc="noisy test sets", disable=len(ids) < 100):
        entry = data[uid]
        if "clean" in conditions:
            manifests["clean"][uid] = dict(entry, condition="clean", noise_type=None,
                                           snr_db=None)
        noisy_conditions = [c for c in conditions if c != "clean"]
        if not noisy_conditions:
            continue
        wav_path = _resolve(entry["wav"], replacements)
        speech = read_audio(wav_path, sample_rate)  # any rate / channel count
        if signal_power(speech) < 1e-10:
            raise SilentSignalError(f"test utterance {uid} ({wav_path}) is silent: "
                                    f"no SNR can be set; leave it out of {manifest}")
        for c in noisy_conditions:
            noise_type, snr = CONDITIONS[c]
            rng = random.Random(f"{seed}|{uid}|{c}")
            mixture, record = mixer.mix(speech.double(), noise_type, snr, rng)
            peak = float(mixture.abs().max())
            gain = min(1.0, PEAK / peak)
            rel = f"{c}/{uid}.wav"
            sf.write(os.path.join(out, rel), (gain * mixture).numpy().astype(np.float32),
                     sample_rate, subtype="PCM_16")
            manifests[c][uid] = dict(
                entry, wav="{matrix_root}/" + rel, condition=c, noise_type=noise_type,
                snr_db=snr, noise_ids=record["noise_ids"],
                noise_files=[files[noise_type][i] for i in record["noise_ids"]],
                noise_offsets=record["noise_offsets"], gain=round(gain, 6),
                clean_wav=entry["wav"])
    return manifests


def main(argv=None):
    parser = argparse.ArgumentParser(description="Build the fixed noisy test matrix.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--manifest", required=True, help="SpeechBrain JSON manifest")
    parser.add_argument("--noise_csvs", required=True, help="output folder of musan_prepare")
    parser.add_argument("--out", required=True, help="output folder of the matrix")
    parser.add_argument("--data_root", default=None, help="value of {data_root} in the manifest")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise draws")
    parser.add_argument("--conditions", default=",".join(CONDITIONS),
                        help="comma-separated conditions to build")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    replacements = {"data_root": args.data_root} if args.data_root else {}
    try:
        paths = build_noisy_testsets(args.manifest, args.noise_csvs, args.out, args.seed,
                                     args.conditions.split(","), replacements,
                                     skip_if_done=False)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in paths.values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
