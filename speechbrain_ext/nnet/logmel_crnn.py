"""Log-mel CRNN encoder: the CPU-sized stand-in for a wav2vec2 encoder.

Waveform in, frame embeddings out, with the call signature of SpeechBrain's
``Wav2Vec2`` wrapper (``encoder(wavs, wav_lens)``), so a YAML can swap one for
the other without touching a training script.

    wav -> 40 log-mel (25 ms / 10 ms) -> mean/variance normalisation
        -> Conv1d (kernel 5, stride = time subsampling) + BatchNorm + ReLU
        -> N-layer bidirectional GRU -> (batch, frames / subsampling, 2 * rnn_size)

With the defaults (256 conv channels, subsampling 3, 3 x BiGRU 160) it has about
1.4 M parameters: the size that reached about 20 % WER with CTC on the synthetic
corpus in the project's feasibility measurements (0.6 M parameters: 32 %). Normalisation is ``global`` (running
statistics, padding excluded) by default: ``sentence`` normalisation would remove
the loudness of each utterance, a strong emotion cue. The BiGRU sees each utterance's
own frames only, as a packed sequence would, but runs without packing: on CPU the
backward pass through a packed GRU is much slower than through a padded one. A CPU
process with two or more intra-op threads runs the two directions of each BiGRU layer
at once, forward and backward, each in its own thread with one intra-op thread (a
GRU's small per-frame products use a second intra-op thread poorly); with one thread
(the fold runner's models trained side by side) or on a GPU they run one after the
other. The two ways give the same outputs and gradients up to float rounding. Idle
OpenMP threads spin on the cores by default: ``OMP_WAIT_POLICY=PASSIVE`` in the
environment leaves the cores to the two direction threads (``study.py`` sets it for the
CTC pre-training; on 2 cores its epochs took 13-16 s, 17 s without it, 19 s with the two
directions one after the other). What follows the encoder (CTC loss, decoding,
pooling) should count its frames with ``encoder_frame_lengths``: the relative wave
lengths, rounded, can count one frame too many (a zeroed one) or too few.

Example
-------
>>> import torch
>>> enc = LogMelCRNN()
>>> out = enc(torch.randn(2, 16000), torch.tensor([1.0, 0.5]))
>>> out.shape   # 101 frames of 10 ms, subsampled by 3
torch.Size([2, 34, 320])
>>> round(sum(p.numel() for p in enc.parameters()) / 1e6, 1)
1.4
>>> layers = LogMelCRNN(output_all_hiddens=True)
>>> hiddens = layers(torch.randn(2, 16000), torch.tensor([1.0, 0.5]))
>>> [tuple(h.shape[1:]) for h in hiddens]   # the conv embeddings, then each BiGRU layer
[(34, 256), (34, 320), (34, 320), (34, 320)]
"""

from concurrent.futures import ThreadPoolExecutor

import torch
from speechbrain.dataio.dataio import length_to_mask
from speechbrain.lobes.features import Fbank
from speechbrain.nnet.RNN import GRU
from speechbrain.processing.features import InputNormalization

from speechbrain_ext.features import SavesNormalizationStats


class LogMelCRNN(SavesNormalizationStats, torch.nn.Module):
    """Log-mel front-end + convolutional subsampling + bidirectional GRU.

    Arguments
    ---------
    n_mels : int
        Number of mel filters.
    conv_channels : int
        Output channels of the subsampling convolution.
    subsampling : int
        Stride of the convolution along time.
    rnn_layers : int
        Number of BiGRU layers.
    rnn_size : int
        Hidden units per direction.
    dropout : float
        Dropout between GRU layers.
    sample_rate : int
        Sampling rate of the input waveforms.
    normalization : str
        ``global`` (running statistics over training data) or ``sentence``
        (per utterance), as in ``speechbrain.processing.features.InputNormalization``.
    output_all_hiddens : bool
        Return every layer's output (a list: the convolution's frame embeddings, then
        each BiGRU layer's, the last one being the usual output), as SpeechBrain's
        ``Wav2Vec2`` wrapper does with the same option. The weights are the same.

    Example
    -------
    >>> LogMelCRNN()(torch.randn(2, 16000), torch.tensor([1.0, 0.5])).shape
    torch.Size([2, 34, 320])
    """

    def __init__(self, n_mels=40, conv_channels=256, subsampling=3, rnn_layers=3,
                 rnn_size=160, dropout=0.15, sample_rate=16000, normalization="global",
                 output_all_hiddens=False):
        super().__init__()
        self.fbank = Fbank(n_mels=n_mels, sample_rate=sample_rate)
        self.norm = InputNormalization(norm_type=normalization)
        self.conv = torch.nn.Sequential(
            torch.nn.Conv1d(n_mels, conv_channels, kernel_size=5, stride=subsampling,
                            padding=2),
            torch.nn.BatchNorm1d(conv_channels),
            torch.nn.ReLU(),
        )
        self.rnn = GRU(hidden_size=rnn_size, input_shape=[None, None, conv_channels],
                       num_layers=rnn_layers, bidirectional=True, dropout=dropout)
        self.output_size = 2 * rnn_size
        self.rnn_layers, self.dropout = rnn_layers, dropout
        self.output_all_hiddens = output_all_hiddens
        self.subsampling = subsampling
        # One direction of one layer, run with self.rnn's weights (not a submodule: the
        # weights stay where checkpoints and optimisers have always found them): one
        # per input size and direction, as the two directions may run at once. The
        # reverse ones are made with the random state put back afterwards, so that a
        # seeded run initialises the modules after this one as with one GRU per size.
        self._one_direction = []
        for size in (conv_channels, 2 * rnn_size):
            forward_template = torch.nn.GRU(size, rnn_size, batch_first=True)
            with torch.random.fork_rng(devices=[]):
                reverse_template = torch.nn.GRU(size, rnn_size, batch_first=True)
            self._one_direction.append([forward_template, reverse_template])

    def forward(self, wavs, wav_lens=None):
        """(batch, samples) -> (batch, frames, 2 * rnn_size); ``wav_lens`` relative (0-1].

        With ``output_all_hiddens``, the list of every layer's output instead: the
        convolution's frame embeddings (``conv_channels`` wide), then each BiGRU layer's.
        """
        if wav_lens is None:
            wav_lens = torch.ones(wavs.shape[0], device=wavs.device)
        feats = self.norm(self.fbank(wavs), wav_lens)
        # Zero the padding, as the convolution's own padding: else the last real frames
        # of a short utterance would read its batch's padding (-mean / std after norm).
        steps, conv_steps = self._frame_counts(wav_lens, wavs.shape[1])
        feats = feats * length_to_mask(steps, max_len=feats.shape[1]).unsqueeze(-1)
        x = self.conv(feats.transpose(1, 2)).transpose(1, 2)
        hiddens = [x]
        for layer in range(self.rnn_layers):
            if layer > 0:  # the stacked GRU's dropout between layers
                x = torch.nn.functional.dropout(x, self.dropout, self.training)
            x = self._gru_layer(layer, x, conv_steps)
            hiddens.append(x)
        return hiddens if self.output_all_hiddens else x

    def frame_lengths(self, wav_lens, num_samples):
        """Relative lengths of the output frames of a batch of ``num_samples`` samples.

        SpeechBrain's CTC loss, greedy decoding and statistics pooling read
        ``round(length * frames)`` frames of each utterance. With the relative wave
        lengths, that can be one frame more than this encoder's own count (a padded
        frame, zeros) or one less, depending on the batch; with these lengths it is
        the encoder's count.

        Example
        -------
        >>> enc = LogMelCRNN()
        >>> lens = torch.tensor([0.3, 1.0])
        >>> frames = enc(torch.randn(2, 32000), lens)   # 67 frames; the first has 21
        >>> torch.round(enc.frame_lengths(lens, 32000) * 67).tolist(), round(0.3 * 67)
        ([21.0, 67.0], 20)
        """
        _, conv_steps = self._frame_counts(wav_lens, num_samples)
        total = (num_samples // self.fbank.compute_STFT.hop_length) // self.subsampling + 1
        return conv_steps.float() / total

    def _frame_counts(self, wav_lens, num_samples):
        """Valid log-mel frames and valid output frames of each utterance (centred STFT:
        ``samples // hop + 1`` frames; convolution: ``(frames - 1) // subsampling + 1``)."""
        hop = self.fbank.compute_STFT.hop_length
        samples = torch.round(wav_lens * num_samples).long()
        steps = (samples // hop + 1).clamp(max=num_samples // hop + 1)
        return steps, (steps - 1) // self.subsampling + 1

    def _gru_layer(self, layer, x, steps):
        """BiGRU layer ``layer`` of ``self.rnn`` on padded ``x`` of ``steps`` valid frames.

        Equal, up to float rounding, to the packed-sequence BiGRU (each utterance sees
        its own frames only; zeros at padded frames), computed without packing: the
        forward direction on the padded batch (padding comes after what it reads), the
        backward one on each utterance reversed within its own length. Why: on CPU,
        PyTorch's backward through a packed GRU is much slower than the padded one.
        """
        total = x.shape[1]
        frames = torch.arange(total, device=x.device)
        steps = steps.to(x.device).unsqueeze(1)
        valid = frames < steps  # (batch, frames)
        # Reverses frames [0, steps) of each utterance; padded frames stay in place.
        reverse = torch.where(valid, steps - 1 - frames, frames)
        templates = self._one_direction[min(layer, 1)]
        names = [name for name, _ in templates[0].named_parameters()]
        weights = [getattr(self.rnn.rnn, name.replace("_l0", f"_l{layer}") + suffix)
                   for suffix in ("", "_reverse") for name in names]

        def run(direction, sequence, direction_weights):
            params = dict(zip(names, direction_weights))
            return torch.func.functional_call(templates[direction], params, (sequence,))[0]

        sequences = (x, _take_frames(x, reverse))
        per_direction = (weights[:len(names)], weights[len(names):])
        if x.device.type != "cpu" or torch.get_num_threads() == 1:
            outputs = [run(d, sequences[d], per_direction[d]) for d in (0, 1)]
        elif torch.is_grad_enabled() and any(t.requires_grad for t in (x, *weights)):
            outputs = list(_BothDirections.apply(run, *sequences, *weights))
        else:  # inference: no graph to keep
            def no_grad_run(d):
                with torch.no_grad():  # grad mode is per thread
                    return run(d, sequences[d], per_direction[d])
            outputs = list(_direction_threads().map(no_grad_run, (0, 1)))
        outputs[1] = _take_frames(outputs[1], reverse)
        return torch.cat(outputs, dim=-1) * valid.unsqueeze(-1)


def encoder_frame_lengths(encoder, wav_lens, num_samples):
    """Relative lengths of ``encoder``'s output frames for SpeechBrain's CTC loss,
    decoding and pooling: a ``LogMelCRNN``'s exact ones (``LogMelCRNN.frame_lengths``),
    the relative wave lengths for any other encoder (wav2vec2: SpeechBrain's convention).

    Arguments
    ---------
    encoder : torch.nn.Module
        The encoder, or its ``DistributedDataParallel`` wrapper.
    wav_lens : torch.Tensor
        Relative lengths of the waveforms (the longest: 1.0).
    num_samples : int
        Samples of the padded waveform batch.

    Example
    -------
    >>> lens = torch.tensor([0.3, 1.0])
    >>> encoder_frame_lengths(LogMelCRNN(), lens, 32000)   # 21 and 67 of 67 frames
    tensor([0.3134, 1.0000])
    >>> encoder_frame_lengths(torch.nn.Identity(), lens, 32000)
    tensor([0.3000, 1.0000])
    """
    encoder = getattr(encoder, "module", encoder)
    if isinstance(encoder, LogMelCRNN):
        return encoder.frame_lengths(wav_lens, num_samples)
    return wav_lens


_THREADS = None  # the two direction threads, shared by every LogMelCRNN of the process


def _direction_threads():
    """Two threads of one intra-op thread each, started on first use."""
    global _THREADS
    if _THREADS is None:
        _THREADS = ThreadPoolExecutor(2, thread_name_prefix="bigru_direction",
                                      initializer=torch.set_num_threads, initargs=(1,))
    return _THREADS


class _BothDirections(torch.autograd.Function):
    """The two directions of a BiGRU layer at once, each in its own thread: ``run(d,
    sequence, weights)`` for d = 0 and 1 on (forward, reverse) sequences, whose weights
    are ``weights``' first and second halves. Each thread builds its own graph; the
    backward pass differentiates the two graphs at once too."""

    @staticmethod
    def forward(ctx, run, forward_sequence, reverse_sequence, *weights):
        half = len(weights) // 2

        def direction(d):
            with torch.enable_grad():  # off in a Function's forward; per thread anyway
                leaves = [t.detach().requires_grad_() for t in
                          ((forward_sequence, reverse_sequence)[d],
                           *weights[d * half:(d + 1) * half])]
                return leaves, run(d, leaves[0], leaves[1:])

        ctx.graphs = list(_direction_threads().map(direction, (0, 1)))
        return tuple(out.detach() for _, out in ctx.graphs)

    @staticmethod
    def backward(ctx, grad_forward, grad_reverse):
        def direction(d):
            leaves, out = ctx.graphs[d]
            return torch.autograd.grad(out, leaves, (grad_forward, grad_reverse)[d])

        (dx_f, *dw_f), (dx_r, *dw_r) = _direction_threads().map(direction, (0, 1))
        return (None, dx_f, dx_r, *dw_f, *dw_r)


def _take_frames(x, index):
    """``x[b, index[b, t]]`` for every utterance b and frame t."""
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
