"""Fixed-length log-mel features, optionally with deltas as channels ("3-D log-mel").

    wav -> 40 log-mel (25 ms Hamming window, 10 ms shift; SpeechBrain ``Fbank``)
        [-> delta, delta-delta (SpeechBrain ``Deltas``) as channels 2 and 3]
        -> mean/variance normalisation (global running statistics, padding excluded)
        -> cut or zero-padded to ``max_frames``  -> (batch, max_frames, n_mels, channels)

Each utterance is processed on its own valid samples, so the features of an
utterance do not depend on the other utterances of its batch (batch padding
changes nothing); frames past its end are exact zeros, the normalised mean. The
relative lengths returned count the utterance's own frames (at most
``max_frames``), for padding-aware pooling.

CoRNN and ACRNN use 300 frames (3 s) with deltas; the E-transformer 400 frames
(4 s) without.

Example
-------
>>> import torch
>>> features = FixedLengthLogMel(max_frames=300, deltas=True)
>>> feats, lens = features(torch.randn(2, 16000), torch.tensor([1.0, 0.5]))
>>> feats.shape, [round(x, 3) for x in lens.tolist()]
(torch.Size([2, 300, 40, 3]), [0.337, 0.17])
>>> bool((feats[1, 51:] == 0).all())
True
"""

import torch
from speechbrain.lobes.features import MFCC, Fbank
from speechbrain.processing.features import Deltas, InputNormalization


class SavesNormalizationStats:
    """Mixin for a module with an ``InputNormalization`` as ``self.norm`` (or None).

    SpeechBrain's ``InputNormalization`` keeps its running statistics outside the
    state_dict; inside another module they would be lost by a checkpoint of its
    weights. This puts them in the module's state_dict as extra state.
    """

    def get_extra_state(self):
        """The running normalisation statistics: not parameters, so kept here to be
        saved with the weights (a checkpoint of the state_dict would lose them)."""
        return self.norm._statistics_dict() if self.norm is not None else {}

    def set_extra_state(self, state):
        if state and self.norm is not None:
            self.norm._load_statistics_dict(state)


class FixedLengthLogMel(SavesNormalizationStats, torch.nn.Module):
    """Log-mel (+ deltas) of each utterance, normalised, cut or zero-padded to a fixed length.

    Arguments
    ---------
    n_mels : int
        Number of mel filters.
    max_frames : int
        Frames kept (10 ms each): longer utterances are cut, shorter ones zero-padded.
    deltas : bool
        Add delta and delta-delta as two more channels.
    sample_rate : int
        Rate of the waveforms.
    normalization : str or None
        ``global`` (running statistics of the training data) or None.
    """

    def __init__(self, n_mels=40, max_frames=300, deltas=True, sample_rate=16000,
                 normalization="global"):
        super().__init__()
        # What the raw features depend on (FeatureCache keys its folder with it).
        self.settings = {"n_mels": n_mels, "deltas": deltas, "sample_rate": sample_rate,
                         "win_length_ms": 25, "hop_length_ms": 10, "window": "hamming"}
        self.max_frames = max_frames
        self.fbank = Fbank(n_mels=n_mels, sample_rate=sample_rate, win_length=25,
                           hop_length=10)  # STFT window: Hamming (SpeechBrain's default)
        self.deltas = Deltas(input_size=n_mels) if deltas else None
        self.channels = 3 if deltas else 1
        self.norm = InputNormalization(norm_type=normalization) if normalization else None

    def utterance_features(self, wav):
        """Raw (not normalised, not cut) features of one utterance: (frames, channels * n_mels).

        This is what ``FeatureCache`` stores; ``from_features`` finishes the job.
        """
        feats = self.fbank(wav.unsqueeze(0))[0]
        channels = [feats]
        if self.deltas is not None:
            delta = self.deltas(feats.unsqueeze(0))[0]
            channels += [delta, self.deltas(delta.unsqueeze(0))[0]]
        return torch.cat(channels, dim=-1)

    def forward(self, wavs, wav_lens):
        """(batch, max_frames, n_mels, channels) features and their relative lengths."""
        per_utt = []
        for wav, rel in zip(wavs, wav_lens.tolist()):
            n = max(1, int(round(rel * wavs.shape[1])))
            per_utt.append(self.utterance_features(wav[:n]))  # this utterance's samples only
        batch = torch.nn.utils.rnn.pad_sequence(per_utt, batch_first=True)
        frames = torch.tensor([len(f) for f in per_utt], dtype=torch.float, device=wavs.device)
        return self.from_features(batch, frames / batch.shape[1])

    def batch_features(self, batch, wav_augment=None):
        """Features of a SpeechBrain padded batch, from its cache when it has one.

        A batch with ``feats`` (raw features a ``FeatureCache`` stored) goes through
        ``from_features``; otherwise its waveforms ``sig``, first augmented by
        ``wav_augment`` when one is given (training), go through ``forward``.

        Arguments
        ---------
        batch : speechbrain.dataio.batch.PaddedBatch
            With ``feats`` (cached raw features) or ``sig`` (waveforms).
        wav_augment : callable, optional
            ``(wavs, wav_lens) -> (wavs, wav_lens)``, e.g. SpeechBrain's ``Augmenter``;
            not applied to cached features (noisy training computes on the fly).

        Returns
        -------
        feats : torch.Tensor
            (batch, max_frames, n_mels, channels).
        feat_lens : torch.Tensor
            Relative lengths of each utterance's own frames.

        Example
        -------
        >>> from speechbrain.dataio.batch import PaddedBatch
        >>> features = FixedLengthLogMel(max_frames=100, deltas=False, normalization=None)
        >>> wavs = PaddedBatch([{"sig": torch.randn(16000)}, {"sig": torch.randn(8000)}])
        >>> feats, lens = features.batch_features(wavs)
        >>> cached = PaddedBatch([{"feats": features.utterance_features(w[: int(n)])}
        ...     for w, n in zip(wavs.sig.data, wavs.sig.lengths * 16000)])
        >>> bool(torch.allclose(features.batch_features(cached)[0], feats, atol=1e-5))
        True
        >>> double = lambda wavs, lens: (torch.cat([wavs, wavs]), torch.cat([lens, lens]))
        >>> features.batch_features(wavs, wav_augment=double)[0].shape
        torch.Size([4, 100, 40, 1])
        """
        if hasattr(batch, "feats"):
            return self.from_features(*batch.feats)
        wavs, wav_lens = batch.sig
        if wav_augment is not None:
            wavs, wav_lens = wav_augment(wavs, wav_lens)
        return self(wavs, wav_lens)

    def from_features(self, feats, feat_lens):
        """Normalise, cut / zero-pad a batch of raw features (B, T, channels * n_mels).

        ``feat_lens`` are relative to T, as SpeechBrain's padded batches give them.
        """
        if self.norm is not None:
            feats = self.norm(feats, feat_lens)
        out = feats.new_zeros(feats.shape[0], self.max_frames, feats.shape[-1])
        kept = torch.round(feat_lens * feats.shape[1]).clamp(max=self.max_frames).long()
        for i, k in enumerate(kept.tolist()):
            out[i, :k] = feats[i, :k]
        # (B, T, C * n_mels) -> (B, T, n_mels, C): channel c holds features c*n_mels...
        out = out.view(out.shape[0], self.max_frames, self.channels, -1).transpose(2, 3)
        return out, kept.float() / self.max_frames


class PooledMFCC(SavesNormalizationStats, torch.nn.Module):
    """MFCCs, normalised, then max-pooled over time (the SER path of Li et al. 2022).

        wav -> n_mfcc MFCCs (25 ms / 10 ms, SpeechBrain ``MFCC``, no deltas)
            -> mean/variance normalisation (global running statistics, padding excluded)
            -> max pooling over time, kernel = stride = ``pool_size``

    Arguments
    ---------
    n_mfcc : int
        Number of cepstral coefficients (the paper does not say: 40).
    n_mels : int
        Mel filters under the cepstra.
    pool_size : int
        Kernel and stride of the max pooling along time (the paper: 2).
    sample_rate : int
        Rate of the waveforms.
    normalization : str or None
        ``global`` or None.

    Example
    -------
    >>> features = PooledMFCC()
    >>> feats, lens = features(torch.randn(2, 16000), torch.tensor([1.0, 0.5]))
    >>> feats.shape   # 101 frames of 10 ms, pooled by 2
    torch.Size([2, 50, 40])
    """

    def __init__(self, n_mfcc=40, n_mels=40, pool_size=2, sample_rate=16000,
                 normalization="global"):
        super().__init__()
        self.mfcc = MFCC(deltas=False, context=False, n_mfcc=n_mfcc, n_mels=n_mels,
                         sample_rate=sample_rate)
        self.norm = InputNormalization(norm_type=normalization) if normalization else None
        self.pool = torch.nn.MaxPool1d(kernel_size=pool_size, stride=pool_size)

    def forward(self, wavs, wav_lens):
        """(batch, samples), relative lengths -> (batch, frames // pool_size, n_mfcc), lengths.

        The relative lengths carry over: pooling scales every utterance's frames alike.
        """
        feats = self.mfcc(wavs)
        if self.norm is not None:
            feats = self.norm(feats, wav_lens)
        return self.pool(feats.transpose(1, 2)).transpose(1, 2), wav_lens


class StackedLogMel(SavesNormalizationStats, torch.nn.Module):
    """Log-mel with deltas, normalised, then non-overlapping frame stacking (an A2W ASR's input).

        wav -> n_mels log-mel (25 ms / 10 ms) + delta + delta-delta (3 * n_mels)
            -> mean/variance normalisation (global running statistics, padding excluded)
            -> every ``stack`` consecutive frames joined into one (no overlap)
            -> (batch, ceil(frames / stack), 3 * n_mels * stack)

    Each utterance is processed on its own samples and its padding is zero, so its
    features do not depend on its batch.

    Arguments
    ---------
    n_mels : int
        Number of mel filters (Feng et al. 2020: 40, so 120 dimensions with deltas).
    stack : int
        Frames joined into one (Feng et al. 2020 do not say how many; 1 keeps 10 ms).
    sample_rate : int
        Rate of the waveforms.
    normalization : str or None
        ``global`` or None.

    Example
    -------
    >>> features = StackedLogMel(stack=4)
    >>> feats, lens = features(torch.randn(2, 16000), torch.tensor([1.0, 0.5]))
    >>> feats.shape   # 101 frames of 10 ms, 4 at a time: 26 steps of 120 * 4
    torch.Size([2, 26, 480])
    >>> [round(x * 26) for x in lens.tolist()]   # 101 / 4 and 51 / 4 frames, rounded up
    [26, 13]
    """

    def __init__(self, n_mels=40, stack=4, sample_rate=16000, normalization="global"):
        super().__init__()
        self.stack = stack
        self.logmel = FixedLengthLogMel(n_mels=n_mels, deltas=True, sample_rate=sample_rate,
                                        normalization=None)
        self.norm = InputNormalization(norm_type=normalization) if normalization else None
        self.output_size = 3 * n_mels * stack

    def forward(self, wavs, wav_lens):
        """(batch, samples), relative lengths -> stacked features, relative lengths."""
        per_utt = []
        for wav, rel in zip(wavs, wav_lens.tolist()):
            n = max(1, int(round(rel * wavs.shape[1])))
            per_utt.append(self.logmel.utterance_features(wav[:n]))
        frames = torch.tensor([len(f) for f in per_utt], device=wavs.device)
        feats = torch.nn.utils.rnn.pad_sequence(per_utt, batch_first=True)
        if self.norm is not None:
            feats = self.norm(feats, frames.float() / feats.shape[1])
        pad = (-feats.shape[1]) % self.stack
        feats = torch.nn.functional.pad(feats, (0, 0, 0, pad))
        for i, n in enumerate(frames.tolist()):
            feats[i, n:] = 0.0  # the padding stays zero after normalisation
        steps = torch.div(frames + self.stack - 1, self.stack, rounding_mode="floor")
        feats = feats.reshape(feats.shape[0], -1, self.stack * feats.shape[-1])
        return feats, steps.float() / feats.shape[1]
