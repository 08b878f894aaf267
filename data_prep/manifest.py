"""Bring your own corpus: one manifest file that any recipe reads in place of a corpus prep.

A manifest lists the labelled utterances of a corpus, one per line, as JSON lines
(``.jsonl``) or CSV with a header (``.csv``). The field names are EmoBox's where
EmoBox has one (Ma et al., "EmoBox: Multilingual Multi-corpus Speech Emotion
Recognition Toolkit and Benchmark", Interspeech 2024, arXiv:2406.07162), so an
EmoBox ``<corpus>.jsonl`` plus a ``speaker`` field is a valid manifest:

=========== ======== =====================================================================
field       needed   meaning
=========== ======== =====================================================================
key         yes      utterance id, unique (``id`` is accepted too)
wav         yes      audio path: absolute, or relative to ``data_root`` (the recipe's
                     ``data_folder``), or starting with ``{data_root}/``; any rate and
                     channel count (read as 16 kHz mono by ``speechbrain_ext.audio``)
emo         yes      emotion label as the corpus spells it; ``classes`` and ``merge``
                     select and rename
speaker     yes      speaker id: the speaker-grouped folds never put a test speaker in
                     training or validation
transcript  no       what is said (needed by the ASR and joint recipes); empty if absent
session     no       recording session or any group, for leave-one-group-out folds
gender      no       ``F`` / ``M`` or anything else, reported only
length      no       duration in seconds (EmoBox's name); read from the file if absent
=========== ======== =====================================================================

Other fields (EmoBox's ``dataset``, ``sample_rate``, ``channel``, a user's own)
are kept as they are. ``prepare_manifest`` checks every line (clear errors naming
the line), applies the class set, and writes the project's ``data.json``: the
entries keyed by id, ``wav`` under ``{data_root}`` where it was relative,
``duration``, ``emo`` (after merges), ``emo_original``, ``words`` (the transcript
normalised for CTC), ``speaker``, ``gender``, ``session``.

A recipe reads a manifest with ``corpus: manifest`` and ``manifest_file: PATH``
in its YAML (or ``--corpus=manifest --manifest_file=PATH`` on its command line).

Command line::

    python -m data_prep.manifest --manifest my_corpus.jsonl --data_root /data/my_corpus \\
        --output_folder prep [--classes ang,hap,neu,sad] [--merge exc:hap]

Example
-------
>>> import tempfile, json, numpy as np, soundfile as sf
>>> root = tempfile.mkdtemp()
>>> for name in ("a", "b"):
...     sf.write(f"{root}/{name}.wav", np.zeros(8000), 8000)
>>> with open(f"{root}/corpus.csv", "w") as f:
...     _ = f.write("key,wav,emo,speaker,transcript\\n"
...                 "u1,a.wav,angry,spk1,Hello there!\\nu2,b.wav,happy,spk2,\\n")
>>> path = prepare_manifest(f"{root}/corpus.csv", tempfile.mkdtemp(), root,
...                         classes=("ang", "hap"), merge={"angry": "ang", "happy": "hap"})
>>> data = json.load(open(path))
>>> data["u1"]["wav"], data["u1"]["emo"], data["u1"]["words"], data["u2"]["duration"]
('{data_root}/a.wav', 'ang', 'HELLO THERE', 1.0)
"""

import argparse
import csv
import json
import logging
import os
import sys

import soundfile as sf

from speechbrain_ext.ctc import normalize_words
from speechbrain_ext.files import atomic_open, write_json_atomic

logger = logging.getLogger(__name__)

REQUIRED_FIELDS = ("key", "wav", "emo", "speaker")


class ManifestError(ValueError):
    """A manifest line that a recipe cannot use, named by file and line."""


def read_manifest(path):
    """The entries of a ``.jsonl`` or ``.csv`` manifest: list of (line number, dict)."""
    if not os.path.isfile(path):
        raise ManifestError(f"manifest not found: {path}")
    rows = []
    if path.endswith(".csv"):
        with open(path, newline="", encoding="utf-8") as f:
            for lineno, row in enumerate(csv.DictReader(f), 2):
                rows.append((lineno, {k: v for k, v in row.items() if k is not None}))
    elif path.endswith((".jsonl", ".json")):
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ManifestError(f"{path}:{lineno}: not a JSON object ({err})") from err
                if not isinstance(row, dict):
                    raise ManifestError(f"{path}:{lineno}: not a JSON object")
                rows.append((lineno, row))
    else:
        raise ManifestError(f"{path}: a manifest is .jsonl (JSON lines) or .csv")
    if not rows:
        raise ManifestError(f"{path}: no utterances")
    return rows


def _wav_path(wav, data_root):
    """(path as stored in data.json, path on disk) for a manifest's ``wav`` field."""
    if wav.startswith("{data_root}"):
        stored = wav
    elif os.path.isabs(wav):
        return wav, wav
    else:
        stored = "{data_root}/" + wav.replace(os.sep, "/")
    if data_root is None:
        raise ManifestError(f"relative wav path {wav!r} needs a data_root (--data_folder)")
    return stored, stored.replace("{data_root}", data_root, 1)


def prepare_manifest(manifest, output_folder, data_root=None, classes=None, merge=None,
                     max_duration=None, drop_no_transcript=False, skip_if_done=True):
    """Checks a manifest and writes ``output_folder/data.json``; returns its path.

    Arguments
    ---------
    manifest : str
        The ``.jsonl`` or ``.csv`` file (see the module docstring for its fields).
    output_folder : str
        Where ``data.json`` and ``prep_options.json`` are written.
    data_root : str, optional
        Folder that relative ``wav`` paths start from (the recipe's ``data_folder``).
    classes : sequence of str, optional
        Labels kept after the merges; default: every label of the manifest.
    merge : dict, optional
        Label renames applied first, e.g. ``{"cal": "neu"}``.
    max_duration : float, optional
        Drop utterances longer than this many seconds.
    drop_no_transcript : bool
        Drop utterances without a transcript (the joint recipes' choice on IEMOCAP).
    skip_if_done : bool
        Reuse an existing ``data.json`` prepared from the same file and options.
    """
    merge = dict(merge or {})
    stat = os.stat(manifest) if os.path.isfile(manifest) else None
    opts = {"manifest": os.path.abspath(manifest), "data_root": data_root and
            os.path.abspath(data_root), "classes": sorted(classes) if classes else None,
            "merge": dict(sorted(merge.items())), "max_duration": max_duration,
            "drop_no_transcript": bool(drop_no_transcript),
            "manifest_mtime_ns": stat and stat.st_mtime_ns}
    json_path = os.path.join(output_folder, "data.json")
    opts_path = os.path.join(output_folder, "prep_options.json")
    if skip_if_done and os.path.exists(json_path) and os.path.exists(opts_path):
        with open(opts_path) as f:
            if json.load(f) == opts:
                logger.info("manifest already prepared in %s, skipping", json_path)
                return json_path

    data, dropped = {}, {"label": 0, "too_long": 0, "no_transcript": 0}
    for lineno, row in read_manifest(manifest):
        where = f"{manifest}:{lineno}"
        if "key" not in row and "id" in row:
            row = dict(row, key=row.pop("id"))
        missing = [k for k in REQUIRED_FIELDS if not str(row.get(k) or "").strip()]
        if missing:
            raise ManifestError(f"{where}: missing {', '.join(missing)} (every line needs "
                                f"{', '.join(REQUIRED_FIELDS)})")
        uid = str(row.pop("key"))
        if uid in data:
            raise ManifestError(f"{where}: duplicate key {uid!r}")
        label = str(row["emo"])
        emo = merge.get(label, label)
        if classes and emo not in classes:
            dropped["label"] += 1
            continue
        transcript = str(row.get("transcript") or "")
        if drop_no_transcript and not transcript.strip():
            dropped["no_transcript"] += 1
            continue
        stored, on_disk = _wav_path(str(row["wav"]), data_root)
        if row.get("length") not in (None, ""):
            duration = float(row["length"])
        else:
            try:
                info = sf.info(on_disk)
            except Exception as err:  # soundfile raises LibsndfileError / RuntimeError
                raise ManifestError(f"{where}: cannot read {on_disk}: {err}") from err
            duration = info.frames / info.samplerate
        if duration <= 0:
            raise ManifestError(f"{where}: {on_disk} is empty (0 s)")
        if max_duration is not None and duration > max_duration:
            dropped["too_long"] += 1
            continue
        data[uid] = dict(row, wav=stored, duration=round(duration, 3), emo=emo,
                         emo_original=label, transcript=transcript,
                         words=normalize_words(transcript), speaker=str(row["speaker"]),
                         gender=str(row.get("gender") or ""), session=row.get("session"))
    if not data:
        raise ManifestError(f"{manifest}: no utterance is left after filtering ({dropped}; "
                            f"classes {list(classes or [])})")
    counts = {}
    for entry in data.values():
        counts[entry["emo"]] = counts.get(entry["emo"], 0) + 1
    logger.info("manifest %s: %d utterances, %d speakers, %s; dropped %s", manifest, len(data),
                len({e["speaker"] for e in data.values()}), dict(sorted(counts.items())),
                dropped)
    os.makedirs(output_folder, exist_ok=True)
    for path, obj in ((json_path, data), (opts_path, opts)):
        write_json_atomic(path, obj, indent=2)  # never a half-written manifest
    return json_path


def write_manifest(path, rows):
    """Write ``rows`` (dicts with at least the required fields) as JSON lines, atomically."""
    with atomic_open(path, encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description="Check a corpus manifest and write data.json.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--manifest", required=True, help=".jsonl or .csv manifest")
    parser.add_argument("--output_folder", required=True, help="where data.json is written")
    parser.add_argument("--data_root", default=None, help="folder relative wav paths start from")
    parser.add_argument("--classes", default="", help="comma-separated labels kept (after "
                        "merges); default: all")
    parser.add_argument("--merge", default="", help="comma-separated FROM:TO label renames")
    parser.add_argument("--max_duration", type=float, default=None,
                        help="drop utterances longer than this many seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        merge = dict(pair.split(":") for pair in args.merge.split(",") if pair)
        classes = tuple(c for c in args.classes.split(",") if c) or None
        path = prepare_manifest(args.manifest, args.output_folder, args.data_root, classes,
                                merge, args.max_duration, skip_if_done=False)
    except (ManifestError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
