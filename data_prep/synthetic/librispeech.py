"""A mini-LibriSpeech in the real layout: ``LibriSpeech/<split>/<spk>/<chapter>/*.flac``
with one ``<spk>-<chapter>.trans.txt`` per chapter (upper-case, no punctuation).

Neutral read speech by eSpeak NG voices that are not IEMOCAP speakers here, over
the same vocabulary as the mini-IEMOCAP (an ASR pre-trained on it knows the words).

Example
-------
>>> import tempfile, os
>>> root = write_librispeech(tempfile.mkdtemp(), size="tiny", seed=0)
>>> sorted(os.listdir(root))
['SPEAKERS.TXT', 'dev-clean', 'test-clean', 'train-clean-100']
"""

import os
import random

import numpy as np

from data_prep.synthetic import audio, lexicon
from data_prep.synthetic.espeak import ESpeak

# split -> list of (speaker id, voice, gender)
SPEAKERS = {
    "train-clean-100": [(19, "en+m2", "M"), (26, "en+m4", "M"), (27, "en+m5", "M"),
                        (32, "en+m8", "M"), (39, "en+f5", "F"), (40, "en+Andrea", "F"),
                        (60, "en+Alicia", "F"), (78, "en+linda", "F")],
    "dev-clean": [(84, "en+adam", "M"), (174, "en+steph", "F")],
    "test-clean": [(121, "en+david", "M"), (237, "en+aunty", "F")],
}
SIZES = {"tiny": {"train-clean-100": 4, "dev-clean": 2, "test-clean": 2},
         "demo": {"train-clean-100": 125, "dev-clean": 50, "test-clean": 50}}


def write_librispeech(out_dir, size="demo", seed=0):
    """Write ``out_dir/LibriSpeech``; returns its path."""
    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    tts = ESpeak()
    root = os.path.join(out_dir, "LibriSpeech")
    os.makedirs(root, exist_ok=True)
    speakers_txt = []
    for split, speakers in SPEAKERS.items():
        for spk, voice, gender in speakers:
            speakers_txt.append(f"{spk:<5}| {gender} | {split:<16}| 1.00 | {voice}")
            chapter = 1000 + spk
            cdir = os.path.join(root, split, str(spk), str(chapter))
            os.makedirs(cdir, exist_ok=True)
            lines = []
            for i in range(SIZES[size][split]):
                emotion = rng.choice(sorted(lexicon.PROSODY))  # words of every emotion
                text = lexicon.sentence(emotion, rng)
                wav = tts.synth(text + ".", voice=voice, **lexicon.prosody("neu", rng))
                uid = f"{spk}-{chapter}-{i:04d}"
                audio.write(os.path.join(cdir, uid + ".flac"), audio.room(wav, rng, nrng), "FLAC")
                lines.append(f"{uid} {text.upper()}")
            with open(os.path.join(cdir, f"{spk}-{chapter}.trans.txt"), "w") as f:
                f.write("\n".join(lines) + "\n")
    with open(os.path.join(root, "SPEAKERS.TXT"), "w") as f:
        f.write(";ID  |SEX| SUBSET          |MINUTES| NAME\n" + "\n".join(speakers_txt) + "\n")
    return root
