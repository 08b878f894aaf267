"""The synthetic corpora: real layouts, what prep must meet, determinism and caching."""

import glob
import json
import os
import re
import subprocess
import sys

import soundfile as sf

from conftest import tree_hash
from data_prep.synthetic import generate, iemocap, librispeech, musan
from data_prep.synthetic.iemocap import SIZES as IEMOCAP_SIZES  # the fixture shadows `iemocap`


def test_iemocap_layout_and_formats(iemocap):
    for s in range(1, 6):
        for sub in ("dialog/EmoEvaluation/Categorical", "dialog/EmoEvaluation/Attribute",
                    "dialog/transcriptions", "sentences/wav"):
            assert os.path.isdir(os.path.join(iemocap, f"Session{s}", sub)), (s, sub)
    emo_file = os.path.join(iemocap, "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt")
    text = open(emo_file).read()
    assert text.startswith("% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]")
    assert re.search(r"^\[\d+\.\d{4} - \d+\.\d{4}\]\tSes01F_impro01_F000\t[a-z]{3}\t\[", text, re.M)
    assert re.search(r"^C-E\d:\t", text, re.M) and re.search(r"^A-E\d:\t", text, re.M)
    info = sf.info(glob.glob(os.path.join(iemocap, "Session1/sentences/wav/*/*.wav"))[0])
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")


def _labels(root):
    out = {}
    for path in glob.glob(os.path.join(root, "Session*/dialog/EmoEvaluation/*.txt")):
        for m in re.finditer(r"^\[[^\]]+\]\t(\S+)\t(\w+)\t", open(path).read(), re.M):
            out[m.group(1)] = m.group(2)
    return out


def test_iemocap_holds_what_real_prep_meets(iemocap):
    labels = _labels(iemocap)
    assert {"exc", "fru", "xxx"} <= set(labels.values())  # labels prep must merge or drop
    for dialog in ("Ses03M_impro05a", "Ses03M_impro08b", "Ses05M_script01_1b"):
        turns = [t for t in labels if t.startswith(dialog + "_")]
        assert {t.rsplit("_", 1)[1][0] for t in turns} == {"F", "M"}, dialog
    transcribed = set()
    orphans = 0
    for path in glob.glob(os.path.join(iemocap, "Session*/dialog/transcriptions/*.txt")):
        for line in open(path):
            turn = line.split(" ", 1)[0]
            transcribed.add(turn)
            orphans += turn not in labels
    assert orphans >= 10  # transcription lines that match no labelled turn
    assert len(set(labels) - transcribed) == 2  # turns without transcript (tiny spec)
    long_turns = [p for p in glob.glob(os.path.join(iemocap, "Session*/sentences/wav/*/*.wav"))
                  if sf.info(p).duration > 20.0]
    assert len(long_turns) == len(IEMOCAP_SIZES["tiny"]["long_sessions"])


def test_speaker_voices_are_disjoint_across_corpora():
    iemocap_voices = {v for pair in iemocap.VOICES.values() for v in pair}
    libri_voices = {v for spk in librispeech.SPEAKERS.values() for _, v, _ in spk}
    assert len(iemocap_voices) == 10
    assert not iemocap_voices & libri_voices
    assert not iemocap_voices & set(musan.SPEECH_VOICES)
    assert not libri_voices & set(musan.SPEECH_VOICES)


def test_musan_and_librispeech_layouts(corpora):
    root = corpora["musan"]
    for kind, subs in musan.SUBSETS.items():
        for sub in subs:
            files = glob.glob(os.path.join(root, kind, sub, f"{kind}-{sub}-*.wav"))
            assert files, (kind, sub)
            names = {line.split()[0] for line in open(os.path.join(root, kind, sub, "ANNOTATIONS"))}
            assert names == {os.path.basename(f)[:-4] for f in files}
    libri = corpora["librispeech"]
    trans = glob.glob(os.path.join(libri, "train-clean-100/*/*/*.trans.txt"))
    assert len(trans) == 8
    uid, words = open(trans[0]).readline().split(" ", 1)
    assert os.path.exists(os.path.join(os.path.dirname(trans[0]), uid + ".flac"))
    assert words.strip() == words.strip().upper()


def _content(root):
    """Everything but eSpeak NG's sample-level jitter: files, labels, texts, durations."""
    files, texts, durations = [], {}, {}
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root)
            files.append(rel)
            if name.endswith((".wav", ".flac")):
                durations[rel] = sf.info(path).frames / 16000
            elif name.endswith(".txt") or name == "ANNOTATIONS":
                # timestamps follow the audio lengths: compare the rest of each line
                texts[rel] = [re.sub(r"\[[\d.]+ ?- ?[\d.]+\]", "[T]", line)
                              for line in open(path)]
    return files, texts, durations


def test_same_seed_same_corpus_and_cache(tmp_path):
    a = generate(str(tmp_path / "a"), size="tiny", seed=3)
    b = generate(str(tmp_path / "b"), size="tiny", seed=3, jobs=2)  # corpora written at once
    with open(tmp_path / "b" / "synthetic_corpora.json") as f:
        assert sorted(json.load(f)) == ["IEMOCAP_full_release", "LibriSpeech", "musan"]
    for name in a:
        files_a, texts_a, dur_a = _content(a[name])
        files_b, texts_b, dur_b = _content(b[name])
        assert files_a == files_b and texts_a == texts_b, name
        # eSpeak NG's engine state: up to 60 ms per turn seen between a fresh and a used one
        assert max(abs(dur_a[k] - dur_b[k]) for k in dur_a) < 0.1, name
    # noise and music come from numpy alone: byte-identical
    assert tree_hash(a["musan"] + "/noise") == tree_hash(b["musan"] + "/noise")
    assert tree_hash(a["musan"] + "/music") == tree_hash(b["musan"] + "/music")
    c = generate(str(tmp_path / "c"), size="tiny", seed=4, corpora=["iemocap"])
    assert _content(c["iemocap"])[1] != _content(a["iemocap"])[1]
    # A rerun with the same settings reuses the corpus: nothing is rewritten.
    wav = glob.glob(os.path.join(a["iemocap"], "Session1/sentences/wav/*/*.wav"))[0]
    before = tree_hash(a["iemocap"])
    mtime = os.stat(wav).st_mtime_ns
    generate(str(tmp_path / "a"), size="tiny", seed=3, corpora=["iemocap"])
    assert os.stat(wav).st_mtime_ns == mtime and tree_hash(a["iemocap"]) == before
    # Other settings rewrite it.
    generate(str(tmp_path / "a"), size="tiny", seed=5, corpora=["iemocap"])
    assert tree_hash(a["iemocap"]) != before


def test_the_process_that_starts_the_corpus_writers_imports_no_resampler():
    """``python -m data_prep.synthetic`` starts one writer process per corpus: before that,
    the quick start waits for its imports; scipy.signal (0.9 s) is the writers' alone."""
    code = "import sys, data_prep.synthetic.__main__; print('scipy.signal' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
