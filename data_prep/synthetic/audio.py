"""Small audio helpers shared by the synthetic corpus generators.

Example
-------
>>> import numpy as np, random
>>> x = np.ones(1600, dtype=np.float32) * 0.1
>>> y = room(x, random.Random(0), np.random.default_rng(0))
>>> len(y) > len(x), float(np.abs(y).max()) <= 1.0
(True, True)
"""

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000


def room(wav, rng, nrng, snr_range=(25.0, 45.0), pad_range=(0.05, 0.3)):
    """Leading / trailing silence and light white noise (SNR 25-45 dB), clipped to [-1, 1]."""
    pads = [np.zeros(int(SAMPLE_RATE * rng.uniform(*pad_range)), np.float32) for _ in range(2)]
    x = np.concatenate([pads[0], wav, pads[1]])
    power = float(np.mean(x ** 2)) + 1e-12
    snr = rng.uniform(*snr_range)
    x = x + nrng.normal(0.0, np.sqrt(power / 10 ** (snr / 10)), x.shape)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def write(path, wav, fmt="WAV"):
    """Write 16 kHz, 16-bit PCM (``fmt`` 'WAV' or 'FLAC')."""
    sf.write(path, wav, SAMPLE_RATE, subtype="PCM_16", format=fmt)
