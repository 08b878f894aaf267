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
the loudness of each utterance, a strong emotion cue.

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

import torch
from speechbrain.dataio.dataio import length_to_mask
from speechbrain.lobes.features import Fbank
from speechbrain.nnet.RNN import GRU, pack_padded_sequence, pad_packed_sequence
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
        # One-layer GRUs that run the stacked GRU's own weights layer by layer
        # (output_all_hiddens); a plain list, so that the state_dict is unchanged.
        self._one_layer = [torch.nn.GRU(size, rnn_size, bidirectional=True, batch_first=True)
                           for size in (conv_channels, 2 * rnn_size)] if output_all_hiddens else []

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
        samples = torch.round(wav_lens * wavs.shape[1]).long()
        steps = (samples // self.fbank.compute_STFT.hop_length + 1).clamp(max=feats.shape[1])
        feats = feats * length_to_mask(steps, max_len=feats.shape[1]).unsqueeze(-1)
        x = self.conv(feats.transpose(1, 2)).transpose(1, 2)
        # The GRU packs lengths * frames cast to int (a truncation): give it the exact
        # count of real output frames of the strided convolution, plus half a frame.
        conv_steps = (steps - 1) // self.subsampling + 1
        rnn_lens = torch.clamp(conv_steps + 0.5, max=x.shape[1]) / x.shape[1]
        if not self.output_all_hiddens:
            x, _ = self.rnn(x, lengths=rnn_lens)
            return x
        hiddens = [x]
        for layer in range(self.rnn_layers):
            if layer > 0:  # the stacked GRU's dropout between layers
                x = torch.nn.functional.dropout(x, self.dropout, self.training)
            x = self._gru_layer(layer, x, rnn_lens)
            hiddens.append(x)
        return hiddens

    def _gru_layer(self, layer, x, rnn_lens):
        """Layer ``layer`` of ``self.rnn`` alone, on padded ``x`` (packed as GRU does)."""
        template = self._one_layer[min(layer, 1)]
        params = {name: getattr(self.rnn.rnn, name.replace("_l0", f"_l{layer}"))
                  for name, _ in template.named_parameters()}
        total = x.shape[1]
        out, _ = torch.func.functional_call(template, params, (pack_padded_sequence(x, rnn_lens),))
        out = pad_packed_sequence(out)
        return torch.nn.functional.pad(out, (0, 0, 0, total - out.shape[1]))
