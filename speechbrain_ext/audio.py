"""Audio of any sample rate and channel count, read as mono at the recipes' rate.

Every place a recipe reads a corpus file goes through ``read_audio``: the data
pipelines, the feature cache and the noisy test matrix. A RAVDESS download is
48 kHz (five of its files stereo), CREMA-D 16 kHz, EmoDB 16 kHz, a user's own
recordings anything: the channels are averaged and the signal resampled
(``torchaudio.functional.resample``, windowed sinc; one kernel per rate pair,
built once) so that the models always see 16 kHz mono. A 16 kHz mono file is
returned as read, untouched.

Example
-------
>>> import tempfile, numpy as np, soundfile as sf
>>> path = f"{tempfile.mkdtemp()}/stereo48k.wav"
>>> t = np.arange(48000) / 48000
>>> sf.write(path, np.stack([np.sin(2 * np.pi * 440 * t), np.zeros_like(t)], 1), 48000)
>>> wav = read_audio(path)
>>> wav.shape, wav.dtype
(torch.Size([16000]), torch.float32)
>>> round(float(wav.abs().max()), 2)  # the two channels averaged
0.5
"""

import functools

import soundfile as sf
import torch
import torchaudio

SAMPLE_RATE = 16000


class AudioReadError(ValueError):
    """A corpus file that cannot serve as speech: missing, unreadable or empty."""


@functools.lru_cache(maxsize=16)
def _resampler(orig_freq, new_freq):
    return torchaudio.transforms.Resample(orig_freq, new_freq)


def read_audio(path, sample_rate=SAMPLE_RATE):
    """Read ``path`` as a mono float32 tensor at ``sample_rate``.

    Arguments
    ---------
    path : str
        Any file libsndfile reads (wav, flac, ogg, ...), any rate, any channel count.
    sample_rate : int
        Rate of the returned signal.

    Returns
    -------
    torch.Tensor
        ``(samples,)``, the channels averaged.

    Raises
    ------
    AudioReadError
        The file is missing, unreadable, or holds no samples.
    """
    try:
        signal, rate = sf.read(path, dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises LibsndfileError / RuntimeError / OSError
        raise AudioReadError(f"cannot read audio file {path}: {err}") from err
    if signal.shape[0] == 0:
        raise AudioReadError(f"audio file {path} is empty (0 samples)")
    wav = torch.from_numpy(signal.mean(axis=1) if signal.shape[1] > 1 else signal[:, 0])
    if rate != sample_rate:
        wav = _resampler(rate, sample_rate)(wav)
    return wav
