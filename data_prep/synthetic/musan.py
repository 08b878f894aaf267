"""A mini-MUSAN in the real layout: ``musan/{noise,music,speech}/<subset>/*.wav`` + ANNOTATIONS.

Noise: coloured noise, mains hum and bursts; music: synthesised note sequences
with harmonics and a bass line; speech: read sentences by eSpeak NG voices that
are not IEMOCAP or LibriSpeech speakers here. All 16 kHz mono, 16-bit.

Example
-------
>>> import tempfile, os
>>> root = write_musan(tempfile.mkdtemp(), size="tiny", seed=0)
>>> sorted(os.listdir(root))
['README', 'music', 'noise', 'speech']
"""

import os
import random

import numpy as np

from data_prep.synthetic import audio, lexicon
from data_prep.synthetic.espeak import ESpeak

SPEECH_VOICES = ["en+Michael", "en+john", "en+paul", "en+robert", "en+anika", "en+shelby",
                 "en+ian", "en+max"]
SIZES = {"tiny": dict(noise=6, music=6, speech=8, seconds=(3.0, 5.0)),
         "demo": dict(noise=20, music=20, speech=20, seconds=(5.0, 10.0))}
SUBSETS = {"noise": ("free-sound", "sound-bible"), "music": ("fma", "jamendo"),
           "speech": ("librivox", "us-gov")}
SR = audio.SAMPLE_RATE


def _noise(n, rng, nrng):
    kind = rng.choice(["white", "pink", "brown", "hum", "bursts"])
    white = nrng.normal(0, 1, n)
    if kind == "pink":  # 1/f spectrum
        spec = np.fft.rfft(white) / np.sqrt(np.arange(1, n // 2 + 2))
        x = np.fft.irfft(spec, n)
    elif kind == "brown":
        x = np.cumsum(white)
        x -= np.convolve(x, np.ones(801) / 801, mode="same")  # remove drift
    elif kind == "hum":
        t = np.arange(n) / SR
        f0 = rng.choice([50.0, 60.0])
        x = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6)) + 0.05 * white
    else:  # bursts of noise with a slow on/off envelope
        env = (np.sin(2 * np.pi * rng.uniform(0.5, 2.0) * np.arange(n) / SR) > 0.3)
        x = white * (0.1 + env)
    return x, kind


def _music(n, rng, nrng):
    t = np.arange(n) / SR
    tempo = rng.uniform(0.15, 0.5)  # seconds per note
    scale = rng.choice([[0, 2, 4, 7, 9], [0, 3, 5, 7, 10]])
    base = rng.uniform(180, 330)
    x = np.zeros(n)
    for start in np.arange(0, n / SR, tempo):
        i0, i1 = int(start * SR), min(n, int((start + tempo) * SR))
        f = base * 2 ** ((rng.choice(scale) + 12 * rng.randint(0, 1)) / 12)
        seg = t[i0:i1] - start
        env = np.exp(-seg * rng.uniform(2, 8))
        x[i0:i1] += env * sum(np.sin(2 * np.pi * f * h * seg) / h ** 1.5 for h in (1, 2, 3))
    x += 0.5 * np.sin(2 * np.pi * base / 2 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * t / tempo / 4))
    return x, rng.choice(["classical", "pop", "jazz", "folk"])


def _speech(n, rng, nrng, tts, voice):
    parts = []
    while sum(map(len, parts)) < n:
        emotion = rng.choice(sorted(lexicon.PROSODY))
        text = lexicon.sentence(emotion, rng) + "."
        parts.append(tts.synth(text, voice=voice, **lexicon.prosody("neu", rng)))
        parts.append(np.zeros(int(rng.uniform(0.1, 0.5) * SR), np.float32))
    return np.concatenate(parts)[:n].astype(np.float64), voice


def write_musan(out_dir, size="demo", seed=0):
    """Write ``out_dir/musan``; returns its path."""
    spec = SIZES[size]
    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    root = os.path.join(out_dir, "musan")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "README"), "w") as f:
        f.write("Synthetic stand-in for MUSAN, written by data_prep.synthetic.\n")
    tts = ESpeak()
    for kind in ("noise", "music", "speech"):
        annotations = {sub: [] for sub in SUBSETS[kind]}
        for i in range(spec[kind]):
            sub = SUBSETS[kind][i % 2]
            n = int(rng.uniform(*spec["seconds"]) * SR)
            if kind == "noise":
                x, note = _noise(n, rng, nrng)
            elif kind == "music":
                x, note = _music(n, rng, nrng)
            else:
                x, note = _speech(n, rng, nrng, tts, SPEECH_VOICES[i % len(SPEECH_VOICES)])
            x = 0.3 * x / (np.abs(x).max() + 1e-9) * rng.uniform(0.5, 1.0)
            name = f"{kind}-{sub}-{i // 2:04d}"
            os.makedirs(os.path.join(root, kind, sub), exist_ok=True)
            audio.write(os.path.join(root, kind, sub, name + ".wav"), x.astype(np.float32))
            annotations[sub].append(f"{name} {note}")
        for sub, lines in annotations.items():
            with open(os.path.join(root, kind, sub, "ANNOTATIONS"), "w") as f:
                f.write("\n".join(lines) + "\n")
    return root
