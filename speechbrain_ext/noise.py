"""MUSAN noise at an exact SNR: noise, music and babble, for training and for test sets.

SNR is the ratio of mean powers over the utterance's samples (padding excluded):
``10 log10(P_speech / P_noise)``. The noise is scaled, the speech is left as is,
so the result is exact up to float rounding.

- ``noise`` and ``music``: one file from the pool, read from a random offset and
  looped when shorter than the utterance.
- ``babble``: 3 to 7 distinct MUSAN speech files (the Kaldi convention), each
  from its own random offset, looped, brought to the same power and summed; the
  sum is then scaled to the SNR.

A silent utterance or noise cannot be brought to an SNR. Noise segments that are
silent (a quiet stretch of a file) are redrawn from another offset; a file that
stays silent raises ``SilentSignalError``; ``AddMusanNoise`` leaves a silent
utterance as it is. No NaN is ever produced.

Files are read as needed (only the segment used), mixed down to mono and
resampled to ``sample_rate``.

Example
-------
>>> import torch
>>> speech, noise = torch.randn(16000), torch.randn(8000)
>>> mixture = speech + scale_to_snr(speech, noise.repeat(2), 5.0)
>>> round(measure_snr(speech, mixture - speech), 3)
5.0
"""

import csv
import math
import random

import numpy as np
import soundfile as sf
import torch
import torchaudio

NOISE_TYPES = ("noise", "music", "babble")
BABBLE_SOURCES = (3, 7)  # Kaldi's --num-bg-noises 3:4:5:6:7
MIN_POWER = 1e-10  # mean square below this (-100 dBFS) counts as silence
MAX_SILENT_DRAWS = 10


class SilentSignalError(ValueError):
    """A signal has no power, so no SNR can be set against it."""


def signal_power(x):
    """Mean square of a 1-D tensor, as a Python float.

    Example
    -------
    >>> signal_power(torch.tensor([1.0, -1.0, 1.0, -1.0]))
    1.0
    """
    return float(torch.mean(x.double() ** 2)) if x.numel() else 0.0


def measure_snr(speech, noise):
    """``10 log10(P_speech / P_noise)`` in dB.

    Example
    -------
    >>> round(measure_snr(torch.ones(10), 0.1 * torch.ones(10)), 6)
    20.0
    """
    return 10 * math.log10(signal_power(speech) / signal_power(noise))


def scale_to_snr(speech, noise, snr_db):
    """``noise`` scaled so that ``speech`` over it has ``snr_db``; same length as ``speech``.

    Example
    -------
    >>> scale_to_snr(torch.zeros(4), torch.ones(4), 10.0)
    Traceback (most recent call last):
    ...
    speechbrain_ext.noise.SilentSignalError: the speech is silent (power 0): no SNR can be set
    """
    if noise.shape != speech.shape:
        raise ValueError(f"noise has {noise.shape} samples, speech {speech.shape}")
    p_speech, p_noise = signal_power(speech), signal_power(noise)
    if p_speech < MIN_POWER:
        raise SilentSignalError(f"the speech is silent (power {p_speech:.3g}): no SNR can be set")
    if p_noise < MIN_POWER:
        raise SilentSignalError(f"the noise is silent (power {p_noise:.3g}): no SNR can be set")
    gain = math.sqrt(p_speech / (p_noise * 10 ** (snr_db / 10)))
    return (noise.double() * gain).to(speech.dtype)


def read_csv(csv_file):
    """Rows of a noise CSV (``ID,duration,wav,...``), as written by ``musan_prepare``."""
    with open(csv_file, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"no file listed in {csv_file}")
    return rows


class NoisePool:
    """The files of one noise CSV, read segment by segment at ``sample_rate``, mono.

    Arguments
    ---------
    csv_file : str
        A CSV with at least the columns ``ID`` and ``wav``.
    sample_rate : int
        Rate of the returned segments (files at other rates are resampled).
    """

    def __init__(self, csv_file, sample_rate=16000):
        self.csv_file = csv_file
        self.rows = read_csv(csv_file)
        self.sample_rate = sample_rate
        self._info = {}

    def __len__(self):
        return len(self.rows)

    def info(self, index):
        """(frames, sample rate) of file ``index``, read from its header once."""
        path = self.rows[index]["wav"]
        if path not in self._info:
            info = sf.info(path)
            self._info[path] = (info.frames, info.samplerate)
        return self._info[path]

    def read(self, index, offset, num_samples):
        """``num_samples`` at ``sample_rate`` from file frame ``offset`` on, looping the file."""
        path = self.rows[index]["wav"]
        frames, rate = self.info(index)
        needed = math.ceil(num_samples * rate / self.sample_rate) + (rate != self.sample_rate)
        pieces, position = [], offset % frames
        while needed > 0:
            count = min(needed, frames - position)
            piece, _ = sf.read(path, start=position, frames=count, dtype="float32",
                               always_2d=True)
            pieces.append(piece.mean(axis=1))  # mix down to mono
            needed -= len(piece)
            position = 0
        segment = torch.from_numpy(np.concatenate(pieces))
        if rate != self.sample_rate:
            segment = torchaudio.functional.resample(segment, rate, self.sample_rate)
        return segment[:num_samples]

    def draw(self, index, num_samples, rng):
        """A non-silent segment of file ``index`` from a random offset; returns (segment, offset).

        The offset leaves room for the whole segment when the file is long enough;
        otherwise the file is looped from a random start.
        """
        frames, rate = self.info(index)
        span = math.ceil(num_samples * rate / self.sample_rate)
        for _ in range(MAX_SILENT_DRAWS):
            offset = rng.randrange(frames - span + 1) if frames >= span else rng.randrange(frames)
            segment = self.read(index, offset, num_samples)
            if signal_power(segment) >= MIN_POWER:
                return segment, offset
        raise SilentSignalError(f"{self.rows[index]['wav']} is silent at {MAX_SILENT_DRAWS} "
                                f"random offsets: leave it out of {self.csv_file}")


class MusanMixer:
    """Draws MUSAN noise, music or babble for an utterance and mixes it at an SNR.

    Arguments
    ---------
    noise_csv, music_csv, speech_csv : str, optional
        Pool CSVs from ``data_prep.musan_prepare`` (the speech pool makes babble).
        Only the types used need one.
    sample_rate : int
        Rate of the speech to mix.
    babble_sources : tuple of int
        Smallest and largest number of overlapped talkers in babble.

    Example
    -------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with open(f"{folder}/speech.csv", "w") as f:  # a pool of 8 "talkers"
    ...     _ = f.write("ID,wav\\n")
    ...     for k in range(8):
    ...         sf.write(f"{folder}/s{k}.wav", np.random.default_rng(k).normal(0, 0.1, 32000), 16000)
    ...         _ = f.write(f"s{k},{folder}/s{k}.wav\\n")
    >>> mixer = MusanMixer(speech_csv=f"{folder}/speech.csv")
    >>> speech = 0.1 * torch.randn(24000)
    >>> mixture, record = mixer.mix(speech, "babble", 5.0, random.Random(0))
    >>> round(measure_snr(speech, mixture - speech), 4), 3 <= len(record["noise_ids"]) <= 7
    (5.0, True)
    """

    def __init__(self, noise_csv=None, music_csv=None, speech_csv=None, sample_rate=16000,
                 babble_sources=BABBLE_SOURCES):
        csvs = {"noise": noise_csv, "music": music_csv, "babble": speech_csv}
        self.pools = {k: NoisePool(c, sample_rate) for k, c in csvs.items() if c}
        self.babble_sources = tuple(babble_sources)
        if self.babble_sources[0] < 1 or self.babble_sources[0] > self.babble_sources[1]:
            raise ValueError(f"babble_sources must be (low, high), 1 <= low <= high; "
                             f"got {babble_sources}")

    def make_noise(self, noise_type, num_samples, rng):
        """Noise of ``num_samples`` (not yet scaled) and a record of the files and offsets."""
        if noise_type not in NOISE_TYPES:
            raise ValueError(f"unknown noise type {noise_type!r}; expected one of {NOISE_TYPES}")
        if noise_type not in self.pools:
            csv_name = "speech_csv" if noise_type == "babble" else f"{noise_type}_csv"
            raise ValueError(f"no {csv_name} given, so no {noise_type} can be drawn")
        pool = self.pools[noise_type]
        if noise_type != "babble":
            index = rng.randrange(len(pool))
            segment, offset = pool.draw(index, num_samples, rng)
            return segment, {"noise_ids": [pool.rows[index]["ID"]], "noise_offsets": [offset]}
        low, high = self.babble_sources
        if len(pool) < low:
            raise ValueError(f"babble needs {low} distinct speech files, {pool.csv_file} has "
                             f"{len(pool)}")
        count = rng.randint(low, min(high, len(pool)))
        babble, ids, offsets = torch.zeros(num_samples, dtype=torch.float64), [], []
        for index in rng.sample(range(len(pool)), count):
            segment, offset = pool.draw(index, num_samples, rng)
            babble += segment.double() / math.sqrt(signal_power(segment))  # equal talkers
            ids.append(pool.rows[index]["ID"])
            offsets.append(offset)
        return babble.float(), {"noise_ids": ids, "noise_offsets": offsets}

    def mix(self, speech, noise_type, snr_db, rng):
        """``speech`` + drawn noise at ``snr_db``; returns (mixture, record)."""
        noise, record = self.make_noise(noise_type, speech.shape[-1], rng)
        mixture = speech + scale_to_snr(speech, noise.to(speech.device, speech.dtype), snr_db)
        record.update(noise_type=noise_type, snr_db=snr_db)
        return mixture, record


class AddMusanNoise(torch.nn.Module):
    """On-the-fly MUSAN noise for training, usable alone or in ``speechbrain.augment.Augmenter``.

    Each utterance of the batch, with probability ``noise_prob``, gets a type drawn
    from ``noise_types`` and an SNR uniform in [``snr_low``, ``snr_high``] dB, from
    the training pools. Padding stays zero. Draws follow torch's RNG, so a seeded
    run is reproducible. The CSVs are read at the first call, so the YAML can name
    them before ``musan_prepare`` has written them.

    Arguments
    ---------
    noise_csv, music_csv, speech_csv : str, optional
        Training pools from ``data_prep.musan_prepare``.
    noise_types : sequence of str
        Any of ``noise``, ``music``, ``babble``.
    snr_low, snr_high : float
        SNR range in dB.
    noise_prob : float
        Probability that an utterance gets noise.
    babble_sources : tuple of int
        Smallest and largest number of talkers in babble.
    sample_rate : int
        Rate of the waveforms.

    Example
    -------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with open(f"{folder}/pool.csv", "w") as f:  # one pool for the three types here
    ...     _ = f.write("ID,wav\\n")
    ...     for k in range(8):
    ...         sf.write(f"{folder}/n{k}.wav", np.random.default_rng(k).normal(0, 0.1, 32000), 16000)
    ...         _ = f.write(f"n{k},{folder}/n{k}.wav\\n")
    >>> pool = f"{folder}/pool.csv"
    >>> add_noise = AddMusanNoise(noise_csv=pool, music_csv=pool, speech_csv=pool)
    >>> clean = 0.1 * torch.randn(2, 16000)
    >>> clean[1, 8000:] = 0  # padding
    >>> noisy = add_noise(clean, torch.tensor([1.0, 0.5]))
    >>> noisy.shape, bool((noisy[1, 8000:] == 0).all()), bool((noisy[0] != clean[0]).any())
    (torch.Size([2, 16000]), True, True)
    """

    def __init__(self, noise_csv=None, music_csv=None, speech_csv=None,
                 noise_types=NOISE_TYPES, snr_low=5.0, snr_high=35.0, noise_prob=1.0,
                 babble_sources=BABBLE_SOURCES, sample_rate=16000):
        super().__init__()
        unknown = set(noise_types) - set(NOISE_TYPES)
        if unknown or not noise_types:
            raise ValueError(f"noise_types must be a non-empty subset of {NOISE_TYPES}")
        if snr_low > snr_high:
            raise ValueError(f"snr_low {snr_low} > snr_high {snr_high}")
        self.csvs = dict(noise_csv=noise_csv, music_csv=music_csv, speech_csv=speech_csv)
        self.noise_types = list(noise_types)
        self.snr_low, self.snr_high, self.noise_prob = snr_low, snr_high, noise_prob
        self.babble_sources, self.sample_rate = babble_sources, sample_rate
        self.mixer = None

    def forward(self, waveforms, lengths):
        """``waveforms`` [batch, time] with noise added; ``lengths`` relative, as in SpeechBrain."""
        if self.mixer is None:
            self.mixer = MusanMixer(**self.csvs, sample_rate=self.sample_rate,
                                    babble_sources=self.babble_sources)
        rng = random.Random(int(torch.randint(0, 2 ** 62, (1,))))  # follows torch's seed
        noisy = waveforms.clone()
        for i, rel_length in enumerate(lengths.tolist()):
            n = int(round(rel_length * waveforms.shape[1]))
            speech = waveforms[i, :n]
            if rng.random() >= self.noise_prob or signal_power(speech) < MIN_POWER:
                continue  # no noise drawn, or a silent utterance: left as it is
            noise_type = rng.choice(self.noise_types)
            snr = rng.uniform(self.snr_low, self.snr_high)
            noisy[i, :n], _ = self.mixer.mix(speech, noise_type, snr, rng)
        return noisy
