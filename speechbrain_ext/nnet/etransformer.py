"""Residual-BLSTM, time pooling and E-transformer modules.

D. Hu, X. Hu, X. Xu, "Multiple Enhancements to LSTM for Learning Emotion-Salient
Features in Speech Emotion Recognition", Proc. Interspeech 2022, section 2, on (batch, time, features) tensors so a YAML can chain them
in a ``torch.nn.Sequential``:

- ``ThreeConvLayers``: three Conv1d blocks (conv, BatchNorm, ReLU), kernels 5, 3, 3,
  stride 1, 128 channels; a residual connection around the last block.
- ``ResidualBLSTM``: ``H = FFN(BLSTM(X)) + X`` (eq. 1-3), BLSTM 128 per direction
  with dropout 0.2, FFN 256 -> 512 -> 128 with ReLU. ``residual=False`` is the
  plain-BLSTM variant of the ablations (same layers, no skip).
- ``TimePooling``: dropout 0.2, then pooling over time with kernel 2, stride 2.
- ``ETransformer``: ``Y = Conv1d(Transformer(Conv1d(T))) + T`` (eq. 5-8), each Conv1d
  = convolution (kernel 3, stride 1, 128 channels), ReLU, LayerNorm; the transformer
  encoder layer is SpeechBrain's (8 heads, d_model 128, post-LayerNorm as in the
  paper's Fig. 2). ``TransformerBlock`` is the plain transformer of the ablations.

Example
-------
>>> import torch
>>> x = torch.randn(2, 400, 40)
>>> model = torch.nn.Sequential(ThreeConvLayers(40), ResidualBLSTM(128), ResidualBLSTM(128),
...                             TimePooling(), ETransformer(), ETransformer(), ETransformer())
>>> model(x).shape
torch.Size([2, 200, 128])
"""

import torch
from speechbrain.lobes.models.transformer.Transformer import TransformerEncoder
from speechbrain.nnet.RNN import LSTM


class ConvBlock(torch.nn.Module):
    """Conv1d + BatchNorm + ReLU on (B, T, C), length-preserving (stride 1, 'same' padding).

    Arguments
    ---------
    input_size : int
        Input channels (features per frame).
    channels : int
        Output channels.
    kernel_size : int
        Convolution kernel (odd, so the length is kept).

    Example
    -------
    >>> ConvBlock(40, 128, 5)(torch.randn(2, 50, 40)).shape
    torch.Size([2, 50, 128])
    """

    def __init__(self, input_size, channels=128, kernel_size=3):
        super().__init__()
        self.conv = torch.nn.Conv1d(input_size, channels, kernel_size, padding=kernel_size // 2)
        self.norm = torch.nn.BatchNorm1d(channels)

    def forward(self, x):
        """(B, T, input_size) -> (B, T, channels)."""
        return torch.relu(self.norm(self.conv(x.transpose(1, 2)))).transpose(1, 2)


class ThreeConvLayers(torch.nn.Module):
    """The 3-Conv-Layers module: blocks with kernels 5, 3, 3; the last block has a skip.

    Arguments
    ---------
    input_size : int
        Features per input frame (40 log-mel).
    channels : int
        Channels of every block (128).
    kernel_sizes : tuple of int
        Kernel of each block (5, 3, 3).

    Example
    -------
    >>> ThreeConvLayers(40)(torch.randn(2, 50, 40)).shape
    torch.Size([2, 50, 128])
    """

    def __init__(self, input_size=40, channels=128, kernel_sizes=(5, 3, 3)):
        super().__init__()
        sizes = [input_size] + [channels] * len(kernel_sizes)
        self.blocks = torch.nn.ModuleList(
            ConvBlock(sizes[i], sizes[i + 1], k) for i, k in enumerate(kernel_sizes))

    def forward(self, x):
        """(B, T, input_size) -> (B, T, channels)."""
        for block in self.blocks[:-1]:
            x = block(x)
        return self.blocks[-1](x) + x  # residual between the last block and its input


class ResidualBLSTM(torch.nn.Module):
    """``H = FFN(BLSTM(X)) + X``; without ``residual`` the plain BLSTM (+ FFN) of the ablations.

    Arguments
    ---------
    input_size : int
        Features of X (128 in the paper; 40 when the BLSTM reads log-mel directly).
    hidden_size : int
        BLSTM units per direction.
    ffn_size : int
        Middle size of the FFN.
    output_size : int
        Output size of the FFN (= input_size when residual).
    dropout : float
        Dropout on the BLSTM output.
    residual : bool
        Add X to the output.

    Example
    -------
    >>> ResidualBLSTM(128)(torch.randn(2, 30, 128)).shape
    torch.Size([2, 30, 128])
    """

    def __init__(self, input_size=128, hidden_size=128, ffn_size=512, output_size=128,
                 dropout=0.2, residual=True):
        super().__init__()
        if residual and input_size != output_size:
            raise ValueError(f"a residual needs input_size == output_size, got "
                             f"{input_size} and {output_size}")
        self.blstm = LSTM(hidden_size, input_size=input_size, bidirectional=True)
        self.dropout = torch.nn.Dropout(dropout)
        self.ffn = torch.nn.Sequential(torch.nn.Linear(2 * hidden_size, ffn_size),
                                       torch.nn.ReLU(),
                                       torch.nn.Linear(ffn_size, output_size))
        self.residual = residual

    def forward(self, x):
        """(B, T, input_size) -> (B, T, output_size)."""
        h = self.ffn(self.dropout(self.blstm(x)[0]))
        return h + x if self.residual else h


class TimePooling(torch.nn.Module):
    """Dropout, then max pooling over time (kernel 2, stride 2): T frames -> T // 2.

    Relative lengths are unchanged by it. ``mode="avg"`` averages instead.

    Arguments
    ---------
    kernel_size : int
        Pooling window (frames).
    stride : int
        Pooling stride (frames).
    dropout : float
        Dropout before pooling.
    mode : str
        ``max`` or ``avg``.

    Example
    -------
    >>> TimePooling()(torch.randn(2, 401, 128)).shape
    torch.Size([2, 200, 128])
    """

    def __init__(self, kernel_size=2, stride=2, dropout=0.2, mode="max"):
        super().__init__()
        self.dropout = torch.nn.Dropout(dropout)
        pool = {"max": torch.nn.MaxPool1d, "avg": torch.nn.AvgPool1d}[mode]
        self.pool = pool(kernel_size, stride)

    def forward(self, x):
        """(B, T, C) -> (B, T // stride, C) (kernel = stride)."""
        return self.pool(self.dropout(x).transpose(1, 2)).transpose(1, 2)


class ConvReLUNorm(torch.nn.Module):
    """The E-transformer's Conv1d layer: convolution, ReLU, LayerNorm on (B, T, C).

    Arguments
    ---------
    input_size : int
        Input channels.
    channels : int
        Output channels (the LayerNorm size).
    kernel_size : int
        Convolution kernel (odd, so the length is kept).

    Example
    -------
    >>> ConvReLUNorm()(torch.randn(2, 20, 128)).shape
    torch.Size([2, 20, 128])
    """

    def __init__(self, input_size=128, channels=128, kernel_size=3):
        super().__init__()
        self.conv = torch.nn.Conv1d(input_size, channels, kernel_size, padding=kernel_size // 2)
        self.norm = torch.nn.LayerNorm(channels)

    def forward(self, x):
        """(B, T, input_size) -> (B, T, channels), layer-normalised per frame."""
        return self.norm(torch.relu(self.conv(x.transpose(1, 2)).transpose(1, 2)))


class TransformerBlock(torch.nn.Module):
    """SpeechBrain transformer encoder layer(s), post-LayerNorm, no positional encoding.

    Arguments
    ---------
    d_model : int
        Model size (128).
    nhead : int
        Attention heads (8).
    d_ffn : int
        Hidden size of the feed-forward sublayer.
    num_layers : int
        Encoder layers.
    dropout : float
        Dropout inside the layers.

    Example
    -------
    >>> TransformerBlock()(torch.randn(2, 20, 128)).shape
    torch.Size([2, 20, 128])
    """

    def __init__(self, d_model=128, nhead=8, d_ffn=512, num_layers=1, dropout=0.1):
        super().__init__()
        self.encoder = TransformerEncoder(num_layers=num_layers, nhead=nhead, d_ffn=d_ffn,
                                          d_model=d_model, dropout=dropout,
                                          normalize_before=False)

    def forward(self, x):
        """(B, T, d_model) -> (B, T, d_model)."""
        return self.encoder(x)[0]


class ETransformer(torch.nn.Module):
    """``Y = Conv1d(Transformer(Conv1d(T))) + T``.

    Arguments
    ---------
    d_model : int
        Channels of T and of every step (128).
    nhead : int
        Attention heads of the transformer (8).
    d_ffn : int
        Hidden size of the transformer's feed-forward sublayer.
    num_layers : int
        Transformer encoder layers.
    kernel_size : int
        Kernel of both Conv1d layers (3).
    dropout : float
        Dropout inside the transformer.

    Example
    -------
    >>> ETransformer()(torch.randn(2, 20, 128)).shape
    torch.Size([2, 20, 128])
    """

    def __init__(self, d_model=128, nhead=8, d_ffn=512, num_layers=1, kernel_size=3,
                 dropout=0.1):
        super().__init__()
        self.conv_in = ConvReLUNorm(d_model, d_model, kernel_size)
        self.transformer = TransformerBlock(d_model, nhead, d_ffn, num_layers, dropout)
        self.conv_out = ConvReLUNorm(d_model, d_model, kernel_size)

    def forward(self, t):
        """(B, T, d_model) -> (B, T, d_model)."""
        return self.conv_out(self.transformer(self.conv_in(t))) + t
