"""IEMOCAP preparation: one JSON manifest of the labelled turns of ``IEMOCAP_full_release``.

Reads the real layout, never writes into it::

    Session{1..5}/dialog/EmoEvaluation/<dialog>.txt   consensus label lines
        [START - END]<TAB>TURN<TAB>EMO<TAB>[V, A, D]   (subfolders are skipped)
    Session{k}/dialog/transcriptions/<dialog>.txt     TURN [START-END]: text
    Session{k}/sentences/wav/<dialog>/<turn>.wav

and writes ``<output_folder>/data.json``: a dict keyed by turn id whose entries hold
``wav`` (under a ``{data_root}`` placeholder, so a moved corpus still works),
``duration``, ``emo`` (after merges), ``emo_original``, ``transcript`` (as
transcribed), ``words`` (upper-case, letters and apostrophes, no ``[NOISE]`` tags),
``speaker`` (``Ses03F``), ``gender``, ``session``, ``dialog``, ``improvised``.

The speaker is the session plus the gender letter that follows the turn id's last
``_`` (``Ses03M_impro05a_F000`` is spoken by ``Ses03F``), not a fixed character
position, which misassigns the female turns of the dialogs whose name has a suffix
letter: ``Ses03M_impro05a/05b/08a/08b`` and ``Ses05M_script01_1b`` (upstream
SpeechBrain's preparation does; :func:`upstream_speaker_of` reproduces its rule).

On the full release (10039 labelled turns) the result is checked against the
known totals: 5531 turns for 4 classes with excited merged into happy, 2280
improvised turns for 4 classes without the merge.

Command line::

    python -m data_prep.iemocap_prepare --data_folder /data/IEMOCAP_full_release \\
        --output_folder prep [--classes ang,hap,neu,sad] [--merge exc:hap | --merge '']
        [--improvised_only] [--drop_no_transcript] [--max_duration 20]

``--merge`` defaults to ``exc:hap`` (the 5531-turn set); the standard improvised
set (2280 turns) is ``--improvised_only --merge ''``.

Example
-------
>>> import tempfile, json
>>> from data_prep.synthetic import generate
>>> corpus = generate(tempfile.mkdtemp(), size="tiny", corpora=["iemocap"])["iemocap"]
>>> path = prepare_iemocap(corpus, tempfile.mkdtemp())
>>> data = json.load(open(path))
>>> data["Ses03M_impro05a_F000"]["speaker"]
'Ses03F'
>>> sorted({turn["emo"] for turn in data.values()})
['ang', 'hap', 'neu', 'sad']
"""

import argparse
import json
import logging
import os
import re
import sys

import soundfile as sf

from speechbrain_ext.ctc import normalize_words
from speechbrain_ext.files import write_json_atomic

logger = logging.getLogger(__name__)

SESSIONS = (1, 2, 3, 4, 5)
DEFAULT_CLASSES = ("ang", "hap", "neu", "sad")
DEFAULT_MERGE = {"exc": "hap"}
FULL_RELEASE_LABELLED_TURNS = 10039
# Known totals on the full release, keyed by (classes, merge, improvised_only).
EXPECTED_COUNTS = {
    (DEFAULT_CLASSES, (("exc", "hap"),), False): 5531,
    (DEFAULT_CLASSES, (), True): 2280,
}
LABEL_LINE = re.compile(
    r"^\[(?P<start>\d+(?:\.\d+)?) - (?P<end>\d+(?:\.\d+)?)\]\t"
    r"(?P<turn>Ses0[1-5][FM]_\S+_[FM]\d{3})\t(?P<emo>[a-z]{3})\t\[[^\]]*\]\s*$"
)
TRANSCRIPT_LINE = re.compile(r"^(?P<turn>Ses0[1-5]\S+) \[[^\]]*\]:\s?(?P<text>.*)$")


class IEMOCAPPrepError(ValueError):
    """The corpus tree or one of its files is not what IEMOCAP preparation expects."""


def speaker_of(turn_id):
    """Speaker of a turn: session prefix + gender letter after the last ``_``.

    Example
    -------
    >>> speaker_of("Ses03M_impro05a_F012"), speaker_of("Ses05M_script01_1b_M003")
    ('Ses03F', 'Ses05M')
    """
    gender = turn_id.rsplit("_", 1)[-1][:1]
    if gender not in ("F", "M"):
        raise IEMOCAPPrepError(f"cannot read the speaker of turn id {turn_id!r}")
    return turn_id[:5] + gender


def upstream_speaker_of(turn_id):
    """The speaker upstream SpeechBrain's ``recipes/IEMOCAP/emotion_recognition/
    iemocap_prepare.py`` (commit 9c826ef) gives a turn, for comparisons with it.

    Upstream reads the gender letter at a fixed character: 18 in scripted dialogs
    (the turn id's character 7 is ``s``), else 15, and gives every turn whose letter
    there is not ``F`` to the male speaker. Its speaker ``2k - 1`` is Session k's
    woman, ``2k`` its man: the order of ``speaker10``'s folds (fold k is upstream's
    ``--test_spk_id=k``, with the same validation speaker).

    Example
    -------
    >>> upstream_speaker_of("Ses01F_impro01_F000"), upstream_speaker_of("Ses03M_impro05a_F000")
    ('Ses01F', 'Ses03M')
    >>> upstream_speaker_of("Ses05M_script01_1b_F002")  # the letter is at 19, not 18
    'Ses05M'
    """
    letter = turn_id[18] if turn_id[7] == "s" else turn_id[15]
    return turn_id[:5] + ("F" if letter == "F" else "M")


def upstream_misassigned(data):
    """``{dialog: [turn ids]}`` of the turns whose upstream speaker
    (:func:`upstream_speaker_of`) differs from theirs, for a ``data.json`` dict."""
    wrong = {}
    for turn_id in sorted(data):
        if upstream_speaker_of(turn_id) != data[turn_id]["speaker"]:
            wrong.setdefault(turn_id.rsplit("_", 1)[0], []).append(turn_id)
    return wrong


def parse_emo_evaluation(path):
    """Consensus labels of one EmoEvaluation file: list of (turn id, label)."""
    labels = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if not line.startswith("["):
                continue  # header, annotator lines (C-E*, A-E*), blank lines
            match = LABEL_LINE.match(line.rstrip("\n"))
            if match is None:
                raise IEMOCAPPrepError(
                    f"{path}:{lineno}: malformed label line {line.strip()!r} "
                    "(expected '[START - END]<TAB>TURN<TAB>EMO<TAB>[V, A, D]')"
                )
            labels.append((match["turn"], match["emo"]))
    return labels


def parse_transcriptions(path):
    """Transcripts of one dialog: dict turn id -> text (lines of no turn are kept too)."""
    out = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            match = TRANSCRIPT_LINE.match(line.strip())
            if match:
                out[match["turn"]] = match["text"].strip()
    return out


def _check_tree(data_folder):
    if not os.path.isdir(data_folder):
        raise IEMOCAPPrepError(
            f"IEMOCAP folder not found: {data_folder} "
            "(pass --data_folder=/path/to/IEMOCAP_full_release)"
        )
    for session in SESSIONS:
        for sub in ("dialog/EmoEvaluation", "dialog/transcriptions", "sentences/wav"):
            path = os.path.join(data_folder, f"Session{session}", sub)
            if not os.path.isdir(path):
                raise IEMOCAPPrepError(
                    f"missing folder {path}: is {data_folder} a complete IEMOCAP_full_release?"
                )


def _options(data_folder, classes, merge, improvised_only, drop_no_transcript, max_duration):
    return {
        "data_folder": os.path.abspath(data_folder),
        "classes": sorted(classes),
        "merge": dict(sorted(merge.items())),
        "improvised_only": bool(improvised_only),
        "drop_no_transcript": bool(drop_no_transcript),
        "max_duration": max_duration,
    }


def prepare_iemocap(
    data_folder,
    output_folder,
    classes=DEFAULT_CLASSES,
    merge=None,
    improvised_only=False,
    drop_no_transcript=False,
    max_duration=None,
    skip_if_done=True,
):
    """Writes ``output_folder/data.json``; returns its path.

    Arguments
    ---------
    data_folder : str
        Path to ``IEMOCAP_full_release`` (read only).
    output_folder : str
        Where ``data.json`` and ``prep_options.json`` are written.
    classes : sequence of str
        Labels kept (after merging), e.g. ``("ang", "hap", "neu", "sad")``.
    merge : dict, optional
        Label merges applied first; default ``{"exc": "hap"}``. Pass ``{}`` for none.
    improvised_only : bool
        Keep only turns of improvised dialogs.
    drop_no_transcript : bool
        Drop turns that have no transcription line.
    max_duration : float, optional
        Drop turns longer than this many seconds.
    skip_if_done : bool
        Reuse an existing ``data.json`` prepared with the same options.
    """
    merge = DEFAULT_MERGE if merge is None else dict(merge)
    opts = _options(data_folder, classes, merge, improvised_only, drop_no_transcript,
                    max_duration)
    json_path = os.path.join(output_folder, "data.json")
    opts_path = os.path.join(output_folder, "prep_options.json")
    if skip_if_done and os.path.exists(json_path) and os.path.exists(opts_path):
        with open(opts_path) as f:
            if json.load(f) == opts:
                logger.info("IEMOCAP already prepared in %s, skipping", json_path)
                return json_path

    _check_tree(data_folder)
    data, n_labelled, dropped = {}, 0, {"label": 0, "scripted": 0, "too_long": 0,
                                        "no_transcript": 0}
    for session in SESSIONS:
        emo_dir = os.path.join(data_folder, f"Session{session}", "dialog", "EmoEvaluation")
        trans_dir = os.path.join(data_folder, f"Session{session}", "dialog", "transcriptions")
        for name in sorted(os.listdir(emo_dir)):
            path = os.path.join(emo_dir, name)
            if not name.endswith(".txt") or name.startswith(".") or not os.path.isfile(path):
                continue  # Categorical/, Attribute/, Self-evaluation/, macOS '._' files
            dialog = name[:-4]
            trans_path = os.path.join(trans_dir, name)
            transcripts = parse_transcriptions(trans_path) if os.path.isfile(trans_path) else {}
            for turn, label in parse_emo_evaluation(path):
                n_labelled += 1
                emo = merge.get(label, label)
                if emo not in classes:
                    dropped["label"] += 1
                    continue
                improvised = "_impro" in dialog
                if improvised_only and not improvised:
                    dropped["scripted"] += 1
                    continue
                transcript = transcripts.get(turn)
                if transcript is None and drop_no_transcript:
                    dropped["no_transcript"] += 1
                    continue
                rel = os.path.join(f"Session{session}", "sentences", "wav", dialog, turn + ".wav")
                wav = os.path.join(data_folder, rel)
                if not os.path.isfile(wav):
                    raise IEMOCAPPrepError(f"missing wav {wav} for labelled turn {turn}")
                try:
                    info = sf.info(wav)
                except Exception as err:  # soundfile raises RuntimeError / LibsndfileError
                    raise IEMOCAPPrepError(f"unreadable wav {wav}: {err}") from err
                duration = info.frames / info.samplerate
                if max_duration is not None and duration > max_duration:
                    dropped["too_long"] += 1
                    continue
                speaker = speaker_of(turn)
                data[turn] = {
                    "wav": "{data_root}/" + rel.replace(os.sep, "/"),
                    "duration": round(duration, 3),
                    "emo": emo,
                    "emo_original": label,
                    "transcript": transcript or "",
                    "words": normalize_words(transcript or ""),
                    "speaker": speaker,
                    "gender": speaker[-1],
                    "session": session,
                    "dialog": dialog,
                    "improvised": improvised,
                }
    if n_labelled == 0:
        raise IEMOCAPPrepError(
            f"no labelled turns under {data_folder}/Session*/dialog/EmoEvaluation (empty corpus?)"
        )
    if not data:
        raise IEMOCAPPrepError(f"no turn of {data_folder} is left after filtering ({dropped})")
    _check_known_total(n_labelled, len(data), classes, merge, improvised_only,
                       drop_no_transcript, max_duration)

    counts = {c: sum(t["emo"] == c for t in data.values()) for c in sorted(classes)}
    logger.info("IEMOCAP: %d turns %s; dropped %s", len(data), counts, dropped)
    os.makedirs(output_folder, exist_ok=True)
    for path, obj in ((json_path, data), (opts_path, opts)):
        write_json_atomic(path, obj, indent=2)  # never a half-written manifest
    return json_path


def _check_known_total(n_labelled, n_kept, classes, merge, improvised_only,
                       drop_no_transcript, max_duration):
    """On the full release, compare the count with the totals of the literature."""
    if improvised_only and merge:
        logger.warning("IEMOCAP: improvised turns WITH the merges %s; the standard improvised "
                       "set (2280 turns on the full release) merges nothing: --merge ''",
                       merge)
    if n_labelled != FULL_RELEASE_LABELLED_TURNS or drop_no_transcript or max_duration:
        return
    key = (tuple(sorted(classes)), tuple(sorted(merge.items())), bool(improvised_only))
    expected = EXPECTED_COUNTS.get(key)
    if expected is None:
        return
    if n_kept == expected:
        logger.info("IEMOCAP count check: %d turns, as expected on the full release", n_kept)
    else:
        logger.warning("IEMOCAP count check: %d turns, but the full release gives %d with "
                       "these options: is the corpus complete and unmodified?", n_kept, expected)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Prepare IEMOCAP manifests (data.json).",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data_folder", required=True, help="path to IEMOCAP_full_release")
    parser.add_argument("--output_folder", required=True, help="where data.json is written")
    parser.add_argument("--classes", default=",".join(DEFAULT_CLASSES),
                        help="comma-separated labels kept (after merges)")
    parser.add_argument("--merge", default=",".join(f"{k}:{v}" for k, v in DEFAULT_MERGE.items()),
                        help="comma-separated FROM:TO label merges, applied by default; '' "
                             "for none (the standard 2280-turn improvised set merges none)")
    parser.add_argument("--improvised_only", action="store_true",
                        help="keep the improvised dialogs only")
    parser.add_argument("--drop_no_transcript", action="store_true",
                        help="drop turns without a transcript (5531 -> 5500)")
    parser.add_argument("--max_duration", type=float, default=None,
                        help="drop turns longer than this many seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        merge = dict(pair.split(":") for pair in args.merge.split(",") if pair)
        path = prepare_iemocap(args.data_folder, args.output_folder,
                               tuple(args.classes.split(",")), merge, args.improvised_only,
                               args.drop_no_transcript, args.max_duration, skip_if_done=False)
    except (IEMOCAPPrepError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
