"""LibriSpeech preparation: one JSON manifest per split, for CTC pre-training.

Reads the real layout, never writes into it::

    LibriSpeech/<split>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac
    LibriSpeech/<split>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt   "ID WORDS..."

and writes ``<output_folder>/<split>.json``: a dict keyed by utterance id whose
entries hold ``wav`` (under a ``{data_root}`` placeholder), ``duration`` (seconds),
``words`` (normalised as the IEMOCAP ``words``: upper case, letters, apostrophes)
and ``speaker``. The splits are any folders of the corpus (``train-clean-100``,
``dev-clean``, ``test-clean``, ...).

Command line::

    python -m data_prep.librispeech_prepare --data_folder /data/LibriSpeech --output_folder prep \\
        [--splits train-clean-100,dev-clean,test-clean]

Example
-------
>>> import tempfile, json
>>> from data_prep.synthetic import generate
>>> corpus = generate(tempfile.mkdtemp(), size="tiny", corpora=["librispeech"])["librispeech"]
>>> paths = prepare_librispeech(corpus, tempfile.mkdtemp(), ["dev-clean"])
>>> entry = next(iter(json.load(open(paths["dev-clean"])).values()))
>>> entry["wav"].startswith("{data_root}/dev-clean/"), entry["words"] == entry["words"].upper()
(True, True)
"""

import argparse
import glob
import logging
import os
import sys

import soundfile as sf

from speechbrain_ext.ctc import normalize_words
from speechbrain_ext.files import write_json_atomic

logger = logging.getLogger(__name__)
DEFAULT_SPLITS = ("train-clean-100", "dev-clean", "test-clean")


class LibriSpeechPrepError(ValueError):
    """The corpus tree or one of its files is not what LibriSpeech preparation expects."""


def read_split(data_folder, split):
    """Entries of one split: dict utterance id -> {wav, duration, words, speaker}."""
    split_dir = os.path.join(data_folder, split)
    if not os.path.isdir(split_dir):
        raise LibriSpeechPrepError(
            f"missing split folder {split_dir}: is {data_folder} a LibriSpeech folder with {split}?")
    trans_files = sorted(glob.glob(os.path.join(split_dir, "*", "*", "*.trans.txt")))
    if not trans_files:
        raise LibriSpeechPrepError(f"no <speaker>/<chapter>/*.trans.txt under {split_dir}")
    entries = {}
    for trans in trans_files:
        chapter_dir = os.path.dirname(trans)
        with open(trans, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                uid, _, text = line.strip().partition(" ")
                path = os.path.join(chapter_dir, uid + ".flac")
                try:
                    info = sf.info(path)
                except (RuntimeError, sf.LibsndfileError) as err:
                    raise LibriSpeechPrepError(
                        f"{trans}:{lineno}: cannot read the audio of {uid} ({path}): {err}") from err
                entries[uid] = {
                    "wav": "{data_root}/" + os.path.relpath(path, data_folder).replace(os.sep, "/"),
                    "duration": info.frames / info.samplerate,
                    "words": normalize_words(text),
                    "speaker": uid.split("-")[0],
                }
    return entries


def prepare_librispeech(data_folder, output_folder, splits=DEFAULT_SPLITS):
    """Write ``<output_folder>/<split>.json`` for each split; returns {split: path}.

    All splits are read (and checked) before anything is written.
    """
    if not os.path.isdir(data_folder):
        raise LibriSpeechPrepError(
            f"LibriSpeech folder not found: {data_folder} (pass --data_folder=/path/to/LibriSpeech)")
    manifests = {split: read_split(data_folder, split) for split in splits}
    os.makedirs(output_folder, exist_ok=True)
    paths = {}
    for split, entries in manifests.items():
        paths[split] = os.path.join(output_folder, f"{split}.json")
        write_json_atomic(paths[split], entries, indent=1)
        hours = sum(e["duration"] for e in entries.values()) / 3600
        logger.info("LibriSpeech %s: %d utterances, %.2f h -> %s", split, len(entries), hours,
                    paths[split])
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description="Prepare LibriSpeech manifests (<split>.json).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data_folder", required=True, help="path to LibriSpeech")
    parser.add_argument("--output_folder", required=True, help="where <split>.json go")
    parser.add_argument("--splits", default=",".join(DEFAULT_SPLITS),
                        help="comma-separated splits to prepare")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        paths = prepare_librispeech(args.data_folder, args.output_folder, args.splits.split(","))
    except LibriSpeechPrepError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("\n".join(paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
