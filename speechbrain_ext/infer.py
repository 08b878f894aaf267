"""Run an exported model over audio files: transcript and / or emotion, as JSON lines.

    python -m speechbrain_ext.infer --model models/joint turn1.wav turn2.wav
    python -m speechbrain_ext.infer --model models/joint --folder /data/calls --format table
    python -m speechbrain_ext.infer --model models/cornn --manifest test.json \\
        --data_root /data/IEMOCAP_full_release --output predictions.jsonl --device cuda

The model folder is one ``python -m speechbrain_ext.export`` wrote. Inputs: files,
a folder (its audio files, recursively), or a manifest: SpeechBrain's JSON (a dict
keyed by utterance id with a ``wav`` field, as the recipes' ``test.json``) or the
project's ``.jsonl`` / ``.csv`` manifest (``key`` or ``id``, and ``wav``); ``{data_root}``
and relative paths start at ``--data_root``. Files are sorted by duration and
batched (``--batch_size``), so that a batch holds little padding. Each output
line: ``id``, ``wav``, ``transcript`` (models with ASR), ``emotion`` and
``posteriors`` (models with SER). A file that cannot be read gets an ``error``
line instead and the exit status is 1; the others are still processed.

Example
-------
>>> import tempfile, numpy as np, soundfile as sf
>>> root = tempfile.mkdtemp()
>>> sf.write(f"{root}/long.wav", np.zeros(32000), 16000)
>>> sf.write(f"{root}/short.wav", np.zeros(16000), 16000)
>>> [[u for u, _ in batch] for batch in length_batches(audio_inputs(folder=root), 1)]
[['short'], ['long']]
"""

import argparse
import csv
import json
import os
import re
import sys

import soundfile as sf
from speechbrain.inference.interfaces import foreign_class
from tqdm import tqdm

from speechbrain_ext.audio import AudioReadError
from speechbrain_ext.inference import pad_waveforms

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")


def load_model(folder, device="cpu"):
    """The exported model in ``folder``, its class named by its ``hyperparams.yaml``."""
    hparams = os.path.join(folder, "hyperparams.yaml")
    if not os.path.isfile(hparams):
        raise SystemExit(f"error: {hparams} not found: --model takes a folder written by "
                         "python -m speechbrain_ext.export")
    with open(hparams) as f:
        found = re.search(r"^interface: (\w+)", f.read(), flags=re.M)
    if found is None:
        raise SystemExit(f"error: {hparams} names no interface (exported by an older version?)")
    return foreign_class(source=folder, pymodule_file="custom_interface.py",
                         classname=found.group(1), run_opts={"device": device})


def _manifest_entries(path, data_root):
    """``[(id, wav)]`` of a SpeechBrain JSON, JSON lines or CSV manifest (the project's
    manifest format: an id in ``key`` or ``id``, the audio in ``wav``)."""
    if not os.path.isfile(path):
        raise SystemExit(f"error: manifest not found: {path}")
    with open(path, encoding="utf-8") as f:
        if path.endswith(".csv"):
            rows = list(csv.DictReader(f))
        else:
            text = f.read()
            try:
                data = json.loads(text)
            except json.JSONDecodeError:
                data = None  # JSON lines
            if isinstance(data, dict):  # SpeechBrain's: keyed by utterance id
                rows = [dict(item, id=uid) for uid, item in data.items()]
            else:
                rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    try:
        entries = [(row.get("key", row.get("id")), row["wav"]) for row in rows]
    except (KeyError, AttributeError) as err:
        raise SystemExit(f"error: {path}: every entry needs an id (key or id) and a wav "
                         f"({err!r})") from err
    resolved = []
    for uid, wav in entries:
        if wav.startswith("{data_root}"):
            if data_root is None:
                raise SystemExit(f"error: {uid}: wav {wav!r} needs --data_root")
            wav = data_root + wav[len("{data_root}"):]
        elif not os.path.isabs(wav) and data_root:
            wav = os.path.join(data_root, wav)
        resolved.append((uid, wav))
    return resolved


def audio_inputs(files=(), folder=None, manifest=None, data_root=None):
    """``[(id, path)]`` of the files, the folder's audio files and the manifest's entries.

    Arguments
    ---------
    files : list of str
        Audio files; the id is the file name without its extension.
    folder : str, optional
        Every audio file under it (sorted); the id is its path relative to the folder.
    manifest : str, optional
        SpeechBrain JSON or the project's ``.jsonl`` / ``.csv`` manifest.
    data_root : str, optional
        Where ``{data_root}`` and relative manifest paths start.
    """
    inputs = [(os.path.splitext(os.path.basename(f))[0], f) for f in files]
    if folder is not None:
        for root, _, names in sorted(os.walk(folder)):
            for name in sorted(names):
                if name.lower().endswith(AUDIO_EXTENSIONS):
                    path = os.path.join(root, name)
                    inputs.append((os.path.splitext(os.path.relpath(path, folder))[0], path))
    if manifest is not None:
        inputs += _manifest_entries(manifest, data_root)
    return inputs


def _duration(path):
    try:
        info = sf.info(path)
        return info.frames / info.samplerate
    except Exception:  # unreadable: it fails, with its message, when loaded
        return 0.0


def length_batches(inputs, batch_size):
    """Batches of ``batch_size`` inputs of similar duration (shortest first)."""
    ordered = sorted(inputs, key=lambda item: _duration(item[1]))
    return [ordered[i:i + batch_size] for i in range(0, len(ordered), batch_size)]


def run(model, inputs, batch_size=8, progress=True):
    """One result dict per input, in input order (see the module docstring)."""
    results = {}
    batches = length_batches(inputs, batch_size)
    with tqdm(total=len(inputs), disable=not progress, unit="file", file=sys.stderr) as bar:
        for batch in batches:
            good, wavs = [], []
            for uid, path in batch:
                try:
                    wavs.append(model.load_audio(path))
                    good.append((uid, path))
                except AudioReadError as err:
                    results[(uid, path)] = {"id": uid, "wav": path, "error": str(err)}
            if good:
                for row, (uid, path) in zip(predict(model, wavs), good):
                    results[(uid, path)] = {"id": uid, "wav": path, **row}
            bar.update(len(batch))
    return [results[item] for item in inputs]


def predict(model, wavs):
    """Transcript and / or emotion of a list of 16 kHz waveforms, one dict each."""
    batch, lens = pad_waveforms(wavs)
    rows = [{} for _ in wavs]
    if hasattr(model, "transcribe_and_classify_batch"):
        transcripts, emotion = model.transcribe_and_classify_batch(batch, lens)
    elif hasattr(model, "classify_batch"):
        transcripts, emotion = None, model.classify_batch(batch, lens)
    else:
        transcripts, emotion = model.transcribe_batch(batch, lens), None
    for i, row in enumerate(rows):
        if transcripts is not None:
            row["transcript"] = transcripts[i]
        if emotion is not None:
            out_prob, _, _, labels = emotion
            row["emotion"] = labels[i]
            row["posteriors"] = model.posteriors(out_prob[i])
    return rows


def format_table(results):
    """A plain-text table of the results."""
    lines = [f"{'id':<28} {'emotion':<8} {'p':>5}  transcript"]
    for r in results:
        if "error" in r:
            lines.append(f"{r['id']:<28} ERROR    {r['error']}")
            continue
        emotion = r.get("emotion", "-")
        p = f"{r['posteriors'][emotion]:.2f}" if "posteriors" in r else "-"
        lines.append(f"{r['id']:<28} {emotion:<8} {p:>5}  {r.get('transcript', '')}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", help="audio files")
    parser.add_argument("--model", required=True, help="an exported model folder")
    parser.add_argument("--folder", help="every audio file under this folder")
    parser.add_argument("--manifest", help="SpeechBrain JSON or .jsonl / .csv manifest")
    parser.add_argument("--data_root", help="where {data_root} / relative manifest paths start")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--format", choices=["jsonl", "table"], default="jsonl")
    parser.add_argument("--output", help="write here instead of stdout")
    args = parser.parse_args(argv)
    inputs = audio_inputs(args.files, args.folder, args.manifest, args.data_root)
    if not inputs:
        parser.error("no audio: give files, --folder or --manifest")
    model = load_model(args.model, args.device)
    results = run(model, inputs, args.batch_size, progress=len(inputs) > 1)
    text = (format_table(results) if args.format == "table"
            else "\n".join(json.dumps(r) for r in results))
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
