"""RAVDESS preparation: the speech files as a manifest (``data_prep.manifest``) and ``data.json``.

RAVDESS (S. R. Livingstone, F. A. Russo, "The Ryerson Audio-Visual Database of
Emotional Speech and Song (RAVDESS)", PLoS ONE 13(5): e0196391, 2018,
doi:10.1371/journal.pone.0196391; data: https://zenodo.org/record/1188976,
CC BY-NC-SA 4.0): 24 actors (odd numbers male, even female) say two fixed
sentences in 8 emotions, 1440 speech files, 48 kHz, five of them stereo.

Reads, never writes into, any of these layouts::

    <data_folder>/Actor_NN/03-01-EE-II-SS-RR-NN.wav         Audio_Speech_Actors_01-24.zip
    <data_folder>/Audio_Speech_Actors_01-24/Actor_NN/...    the zip extracted into a folder
    <data_folder>/03-01-EE-II-SS-RR-NN.wav                  all files in one folder

File name fields: modality (03 audio), vocal channel (01 speech; 02 song files are
skipped), emotion (01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful,
07 disgust, 08 surprised), intensity (01 normal, 02 strong; neutral has normal
only), statement (01 "Kids are talking by the door", 02 "Dogs are sitting by the
door"), repetition, actor.

Labels are IEMOCAP's three-letter codes where the classes meet (``neu``, ``hap``,
``sad``, ``ang``), so a recipe's ``emotions: [ang, hap, neu, sad]`` selects the 4
IEMOCAP classes (672 files); the others are ``cal``, ``fea``, ``dis``, ``sur``.
``CLASS_SETS`` names the three sets papers use: ``4``, ``8`` (1440 files) and
``7`` (calm merged into neutral, 1440 files).

Writes into ``output_folder``: ``ravdess.jsonl`` (the kept files in the manifest
format: key, wav relative to the corpus root, emo, speaker ``Actor_NN``, gender,
transcript, intensity, statement, repetition, length, sample_rate, channel) and,
through ``data_prep.manifest.prepare_manifest``, ``data.json`` with ``{data_root}``
paths, as IEMOCAP's.

Command line::

    python -m data_prep.ravdess_prepare --data_folder /data/RAVDESS --output_folder prep \\
        [--class_set 4|7|8] [--intensity all|normal|strong]

Example
-------
>>> import tempfile, json, os, numpy as np, soundfile as sf
>>> root = tempfile.mkdtemp()
>>> os.makedirs(f"{root}/Actor_02")
>>> for emotion in ("01", "05"):
...     sf.write(f"{root}/Actor_02/03-01-{emotion}-01-02-01-02.wav", np.zeros(4800), 48000)
>>> data = json.load(open(prepare_ravdess(root, tempfile.mkdtemp(), expected_total=None)))
>>> entry = data["03-01-05-01-02-01-02"]
>>> entry["emo"], entry["speaker"], entry["gender"], entry["transcript"], entry["wav"]
('ang', 'Actor_02', 'F', 'Dogs are sitting by the door', '{data_root}/Actor_02/03-01-05-01-02-01-02.wav')
"""

import argparse
import logging
import os
import re
import sys

import soundfile as sf

from data_prep.manifest import prepare_manifest, write_manifest

logger = logging.getLogger(__name__)

EMOTIONS = {"01": "neu", "02": "cal", "03": "hap", "04": "sad",
            "05": "ang", "06": "fea", "07": "dis", "08": "sur"}
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
INTENSITIES = {"01": "normal", "02": "strong"}
# name -> (classes kept after the merges, merges)
CLASS_SETS = {
    "4": (("ang", "hap", "neu", "sad"), {}),
    "8": (tuple(sorted(EMOTIONS.values())), {}),
    "7": (tuple(sorted(set(EMOTIONS.values()) - {"cal"})), {"cal": "neu"}),
}
SPEECH_FILES = 1440
FILE_NAME = re.compile(r"^03-0(?P<channel>[12])-(?P<emotion>0[1-8])-(?P<intensity>0[12])-"
                       r"(?P<statement>0[12])-(?P<repetition>0[12])-(?P<actor>\d\d)\.wav$")
ACTOR_FOLDER = re.compile(r"^Actor_(\d\d)$")


class RAVDESSPrepError(ValueError):
    """The folder or one of its files is not what RAVDESS preparation expects."""


def parse_file_name(name):
    """Labels of one RAVDESS speech file name; ``None`` for a song file.

    Example
    -------
    >>> parse_file_name("03-01-02-02-01-02-13.wav")["emo"]
    'cal'
    >>> parse_file_name("03-01-02-02-01-02-13.wav")["gender"]
    'M'
    """
    match = FILE_NAME.match(name)
    if match is None or not 1 <= int(match["actor"]) <= 24:
        raise RAVDESSPrepError(
            f"malformed RAVDESS file name {name!r} (expected 03-01-EE-II-SS-RR-NN.wav: "
            "emotion 01-08, intensity 01-02, statement 01-02, repetition 01-02, actor 01-24)")
    if match["channel"] == "2":
        return None  # the song part of RAVDESS
    if match["emotion"] == "01" and match["intensity"] == "02":
        raise RAVDESSPrepError(f"{name}: RAVDESS has no strong-intensity neutral")
    actor = int(match["actor"])
    return {"emo": EMOTIONS[match["emotion"]], "intensity": INTENSITIES[match["intensity"]],
            "statement": int(match["statement"]), "repetition": int(match["repetition"]),
            "transcript": STATEMENTS[match["statement"]], "speaker": f"Actor_{actor:02d}",
            "gender": "M" if actor % 2 else "F"}


def find_speech_files(data_folder):
    """Relative paths of the RAVDESS wavs under ``data_folder``, checked, sorted."""
    if not os.path.isdir(data_folder):
        raise RAVDESSPrepError(f"RAVDESS folder not found: {data_folder} (pass "
                               "--data_folder=/path/to/the folder of Actor_01 ... Actor_24)")
    found = {}
    for folder, dirs, files in os.walk(data_folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__MACOSX")))
        for name in sorted(files):
            if not name.lower().endswith(".wav") or name.startswith("."):
                continue  # README, macOS '._' files
            labels = parse_file_name(name)
            if labels is None:
                continue
            actor_folder = ACTOR_FOLDER.match(os.path.basename(folder))
            if actor_folder and f"Actor_{actor_folder[1]}" != labels["speaker"]:
                raise RAVDESSPrepError(f"{os.path.join(folder, name)}: the file name says "
                                       f"{labels['speaker']}, its folder another actor")
            rel = os.path.relpath(os.path.join(folder, name), data_folder)
            if name in found:
                raise RAVDESSPrepError(f"{name} found twice: {found[name]} and {rel}")
            found[name] = rel
    if not found:
        raise RAVDESSPrepError(f"no RAVDESS speech file (03-01-*.wav) under {data_folder}: is "
                               "it the folder of Actor_01 ... Actor_24?")
    return [found[name] for name in sorted(found)]


def prepare_ravdess(data_folder, output_folder, classes=CLASS_SETS["4"][0], merge=None,
                    intensity="all", max_duration=None, expected_total=SPEECH_FILES):
    """Writes ``ravdess.jsonl`` and ``data.json`` into ``output_folder``; returns data.json's path.

    Arguments
    ---------
    data_folder : str
        The RAVDESS speech folder (read only), in any layout of the module docstring.
    output_folder : str
        Where the manifest and ``data.json`` are written.
    classes : sequence of str
        Labels kept after the merges (``CLASS_SETS[name][0]``).
    merge : dict, optional
        Label merges applied first, e.g. ``{"cal": "neu"}`` (``CLASS_SETS["7"][1]``).
    intensity : str
        ``all``, ``normal`` or ``strong``: the emotional intensities kept.
    max_duration : float, optional
        Drop files longer than this many seconds.
    expected_total : int, optional
        Speech files of the complete corpus; a warning names any other count.
    """
    if intensity not in ("all", "normal", "strong"):
        raise RAVDESSPrepError(f"intensity must be all, normal or strong, not {intensity!r}")
    merge = dict(merge or {})
    paths = find_speech_files(data_folder)
    if expected_total is not None and len(paths) != expected_total:
        logger.warning("RAVDESS: %d speech files under %s, the complete corpus has %d",
                       len(paths), data_folder, expected_total)
    rows = []
    for rel in paths:
        labels = parse_file_name(os.path.basename(rel))
        emo = merge.get(labels["emo"], labels["emo"])
        if emo not in classes or intensity not in ("all", labels["intensity"]):
            continue
        wav = os.path.join(data_folder, rel)
        try:
            info = sf.info(wav)
        except Exception as err:  # soundfile raises LibsndfileError / RuntimeError
            raise RAVDESSPrepError(f"unreadable wav {wav}: {err}") from err
        if info.frames == 0:
            raise RAVDESSPrepError(f"empty wav {wav}")
        rows.append({"key": os.path.basename(rel)[:-4], "dataset": "ravdess",
                     "wav": rel.replace(os.sep, "/"), **labels,
                     "length": round(info.frames / info.samplerate, 3),
                     "sample_rate": info.samplerate, "channel": info.channels})
    if not rows:
        raise RAVDESSPrepError(f"no RAVDESS file is left for classes {list(classes)}, "
                               f"intensity {intensity}")
    os.makedirs(output_folder, exist_ok=True)
    manifest = write_manifest(os.path.join(output_folder, "ravdess.jsonl"), rows)
    return prepare_manifest(manifest, output_folder, data_folder, classes, merge, max_duration,
                            skip_if_done=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Prepare RAVDESS (manifest and data.json).",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data_folder", required=True,
                        help="the RAVDESS speech folder (Actor_01 ... Actor_24)")
    parser.add_argument("--output_folder", required=True, help="where the files are written")
    parser.add_argument("--class_set", choices=sorted(CLASS_SETS), default="4",
                        help="4 IEMOCAP classes, all 8, or 7 (calm merged into neutral)")
    parser.add_argument("--intensity", choices=("all", "normal", "strong"), default="all",
                        help="emotional intensities kept")
    parser.add_argument("--max_duration", type=float, default=None,
                        help="drop files longer than this many seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    classes, merge = CLASS_SETS[args.class_set]
    try:
        path = prepare_ravdess(args.data_folder, args.output_folder, classes, merge,
                               args.intensity, args.max_duration)
    except (RAVDESSPrepError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
