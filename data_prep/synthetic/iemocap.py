"""A mini-IEMOCAP in the real ``IEMOCAP_full_release`` layout and file formats.

Five sessions of two speakers (eSpeak NG voices), improvised and scripted dialogs,
EmoEvaluation files with the ``%`` header, consensus lines and ``C-E*`` / ``A-E*``
annotator lines, ``Categorical/`` and ``Attribute/`` subfolders, transcriptions
with lines that match no turn, turns without a transcript, labels beyond the four
classes (exc fru sur xxx oth fea), a few turns over 20 s, and the odd dialog
names (``Ses03M_impro05a``, ``Ses03M_impro08b``, ``Ses05M_script01_1b``) whose
turn gender letter is not at the usual character position.

Example
-------
>>> import tempfile, os
>>> root = write_iemocap(tempfile.mkdtemp(), size="tiny", seed=0)
>>> sorted(os.listdir(root))[:2]
['README.synthetic.txt', 'Session1']
"""

import os
import random

import numpy as np

from data_prep.synthetic import audio, lexicon
from data_prep.synthetic.espeak import ESpeak

# Session -> (female voice, male voice): ten distinct speakers.
VOICES = {1: ("en+f1", "en+m1"), 2: ("en+f2", "en+m3"), 3: ("en+f3", "en+m6"),
          4: ("en+f4", "en+m7"), 5: ("en+belinda", "en+travis")}

# Turns per speaker and label. demo: 120 four-class turns (exc merged) per speaker.
SIZES = {
    "tiny": dict(labels=dict(neu=2, hap=1, exc=1, ang=1, sad=1, fru=1, xxx=1),
                 long_sessions=(1, 4), no_transcript=("Ses01M", "Ses04F")),
    "demo": dict(labels=dict(neu=36, hap=12, exc=20, ang=26, sad=26, fru=10, sur=2,
                             xxx=8, oth=1, fea=1),
                 long_sessions=(1, 2, 3, 4, 5),
                 no_transcript=tuple(f"Ses0{s}{g}" for s in range(1, 6) for g in "FM")),
}
CATEGORY_NAMES = {"neu": "Neutral", "hap": "Happiness", "exc": "Excited", "ang": "Anger",
                  "sad": "Sadness", "fru": "Frustration", "sur": "Surprise", "fea": "Fear",
                  "oth": "Other", "dis": "Disgust"}
LONG_TURN_SECONDS = 21.0


def dialogs(session):
    """Dialog names of a session, including the odd real ones."""
    names = [f"Ses0{session}F_impro01", f"Ses0{session}M_impro02",
             f"Ses0{session}F_script01_1", f"Ses0{session}M_script02_2"]
    if session == 3:
        names[1] = "Ses03M_impro05a"
        names.append("Ses03M_impro08b")
    if session == 5:
        names[3] = "Ses05M_script01_1b"
    return names


def _schedule(session, spec, rng):
    """Assign each speaker's labelled turns to the session's dialogs."""
    names = dialogs(session)
    per_dialog = {d: {"F": [], "M": []} for d in names}
    for gender in "FM":
        labels = [lab for lab, n in spec["labels"].items() for _ in range(n)]
        rng.shuffle(labels)
        turns = [dict(label=lab, long=False, transcript=True) for lab in labels]
        speaker = f"Ses0{session}{gender}"
        neutral = [t for t in turns if t["label"] == "neu"]
        if gender == "F" and session in spec["long_sessions"]:
            neutral[0]["long"] = True
        if speaker in spec["no_transcript"]:
            neutral[-1]["transcript"] = False
        for i, turn in enumerate(turns):
            per_dialog[names[i % len(names)]][gender].append(turn)
    return per_dialog


def _speak(tts, voice, label, rng, nrng, long=False):
    emotion = lexicon.acted_emotion(label, rng)
    sentences, wavs = [], []
    while True:
        text = lexicon.sentence(emotion, rng)
        text = text[0].upper() + text[1:] + lexicon.punctuation(emotion, rng)
        pros = lexicon.prosody(emotion, rng)
        wavs.append(tts.synth(text, voice=voice, **pros))
        sentences.append(text)
        if not long or sum(map(len, wavs)) > LONG_TURN_SECONDS * audio.SAMPLE_RATE:
            break
        wavs.append(np.zeros(int(0.4 * audio.SAMPLE_RATE), np.float32))
    return " ".join(sentences), audio.room(np.concatenate(wavs), rng, nrng)


def _annotator_lines(label, rng):
    cats = sorted(CATEGORY_NAMES)
    lines = []
    for k, evaluator in enumerate(("C-E1", "C-E2", "C-E3")):
        if label == "xxx":  # no majority: every evaluator says something else
            name = CATEGORY_NAMES[cats[(rng.randrange(len(cats)) + k) % len(cats)]]
        else:
            name = CATEGORY_NAMES[label if k < 2 else rng.choice([label, "neu"])]
        lines.append(f"{evaluator}:\t{name};\t()")
    for evaluator in ("A-E1", "A-E2"):
        v, a, d = (rng.randint(1, 5) for _ in range(3))
        lines.append(f"{evaluator}:\tval {v}; act {a}; dom  {d};\t()")
    return lines


def write_iemocap(out_dir, size="demo", seed=0):
    """Write ``out_dir/IEMOCAP_full_release``; returns its path."""
    spec = SIZES[size]
    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    tts = ESpeak()
    root = os.path.join(out_dir, "IEMOCAP_full_release")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "README.synthetic.txt"), "w") as f:
        f.write("Synthetic stand-in for IEMOCAP (eSpeak NG voices), written by "
                "data_prep.synthetic. Real layout, not real data.\n")
    for session, (f_voice, m_voice) in VOICES.items():
        voices = {"F": f_voice, "M": m_voice}
        sdir = os.path.join(root, f"Session{session}")
        emo_dir = os.path.join(sdir, "dialog", "EmoEvaluation")
        trans_dir = os.path.join(sdir, "dialog", "transcriptions")
        for sub in ("Categorical", "Attribute"):
            os.makedirs(os.path.join(emo_dir, sub), exist_ok=True)
        os.makedirs(trans_dir, exist_ok=True)
        for dialog, by_gender in _schedule(session, spec, rng).items():
            wav_dir = os.path.join(sdir, "sentences", "wav", dialog)
            os.makedirs(wav_dir, exist_ok=True)
            n_f, n_m = len(by_gender["F"]), len(by_gender["M"])
            both = min(n_f, n_m)  # the two speakers alternate, then the rest
            order = ["F", "M"] * both + ["F"] * (n_f - both) + ["M"] * (n_m - both)
            counters, clock = {"F": 0, "M": 0}, rng.uniform(2.0, 6.0)
            emo_blocks, trans_lines, cat_lines, atr_lines = [], [], [], []
            for gender in order:
                turn = by_gender[gender][counters[gender]]
                turn_id = f"{dialog}_{gender}{counters[gender]:03d}"
                counters[gender] += 1
                text, wav = _speak(tts, voices[gender], turn["label"], rng, nrng, turn["long"])
                audio.write(os.path.join(wav_dir, turn_id + ".wav"), wav)
                start, end = clock, clock + len(wav) / audio.SAMPLE_RATE
                clock = end + rng.uniform(0.3, 2.0)
                vad = ", ".join(f"{rng.uniform(1.5, 4.5):.4f}" for _ in range(3))
                emo_blocks.append("\n".join(
                    [f"[{start:.4f} - {end:.4f}]\t{turn_id}\t{turn['label']}\t[{vad}]"]
                    + _annotator_lines(turn["label"], rng)))
                if turn["transcript"]:
                    trans_lines.append(f"{turn_id} [{start:08.4f}-{end:08.4f}]: {text}")
                cat_lines.append(f"{turn_id} :{CATEGORY_NAMES.get(turn['label'], 'Other')}; ()")
                atr_lines.append(f"{turn_id} :act 3; val 3; dom 3; ()")
            # Real transcriptions also hold segments that are no evaluated turn.
            trans_lines.append(f"{dialog}_MXX0 [{clock:08.4f}-{clock + 1:08.4f}]: [BREATHING]")
            with open(os.path.join(emo_dir, dialog + ".txt"), "w") as f:
                f.write("% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n")
                f.write("\n\n".join(emo_blocks) + "\n\n")
            with open(os.path.join(trans_dir, dialog + ".txt"), "w") as f:
                f.write("\n".join(trans_lines) + "\n")
            with open(os.path.join(emo_dir, "Categorical", dialog + "_e1_cat.txt"), "w") as f:
                f.write("\n".join(cat_lines) + "\n")
            with open(os.path.join(emo_dir, "Attribute", dialog + "_e1_atr.txt"), "w") as f:
                f.write("\n".join(atr_lines) + "\n")
    return root
