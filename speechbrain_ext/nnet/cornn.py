"""CoRNN building blocks: BiLSTM and a Conformer stack on 3-D log-mel.

X. Huang, C. Sun, J. Yang, X. Hou, "Speech Emotion Recognition Based on Recurrent
Neural Networks with Conformer for Emotional Speech Synthesis", SPNCE 2023, Springer
LNICST, 2025, doi:10.1007/978-3-031-73699-5_19, section 2: 3-D log-mel -> BiLSTM ->
Conformer block(s) -> FC -> softmax. The Conformer block is SpeechBrain's
``ConformerEncoderLayer`` with relative positional multi-head attention
(``RelPosMHAXL`` fed by ``RelPosEncXL``), which computes the paper's equations:

    h~  = h + 1/2 FFN(h)                          (1)
    h'  = h~ + MHSA(h~)                           (2)
    h'' = h' + Conv(h')   (pointwise + GLU, depthwise, BatchNorm, Swish, pointwise)   (3)
    h   = LayerNorm(h'' + 1/2 FFN(h''))           (4)

The modules take and return (batch, time, features), so a YAML can chain them in
a ``torch.nn.Sequential``; the ablations drop one of them.

Example
-------
>>> import torch
>>> x = torch.randn(2, 300, 40, 3)
>>> encoder = torch.nn.Sequential(FlattenChannels(), BiLSTM(120, 128),
...                               ConformerStack(256, d_model=256, nhead=4, d_ffn=1024))
>>> encoder(x).shape
torch.Size([2, 300, 256])
"""

import torch
from speechbrain.lobes.models.transformer.Conformer import ConformerEncoder
from speechbrain.nnet.attention import RelPosEncXL
from speechbrain.nnet.normalization import BatchNorm1d
from speechbrain.nnet.RNN import LSTM


class FlattenChannels(torch.nn.Module):
    """(batch, time, n_mels, channels) -> (batch, time, channels * n_mels), channel-major.

    The 3 channels of the 3-D log-mel enter a recurrent layer as one 120-dim frame:
    the 40 static, then the 40 delta, then the 40 delta-delta coefficients.

    Example
    -------
    >>> x = torch.arange(6.0).view(1, 1, 2, 3)   # 2 mels, 3 channels
    >>> FlattenChannels()(x).tolist()
    [[[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]]]
    """

    def forward(self, x):
        """(B, T, n_mels, C) -> (B, T, C * n_mels), channel by channel."""
        return x.transpose(2, 3).reshape(x.shape[0], x.shape[1], -1)


class BiLSTM(torch.nn.Module):
    """Bidirectional LSTM returning only its output sequence, (B, T, 2 * hidden_size).

    Arguments
    ---------
    input_size : int
        Features per frame.
    hidden_size : int
        Units per direction.
    num_layers : int
        Stacked layers.
    dropout : float
        Dropout on the output (and between layers).

    Example
    -------
    >>> BiLSTM(120, 128)(torch.randn(2, 50, 120)).shape
    torch.Size([2, 50, 256])
    """

    def __init__(self, input_size, hidden_size=128, num_layers=1, dropout=0.0):
        super().__init__()
        self.lstm = LSTM(hidden_size, input_size=input_size, num_layers=num_layers,
                         bidirectional=True, dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = torch.nn.Dropout(dropout)
        self.output_size = 2 * hidden_size

    def forward(self, x):
        """(B, T, input_size) -> (B, T, 2 * hidden_size)."""
        return self.dropout(self.lstm(x)[0])


class ConformerStack(torch.nn.Module):
    """Conformer blocks with relative positional attention on (B, T, input_size).

    A linear projection maps ``input_size`` to ``d_model`` when they differ (the
    "w/o BiLSTM" ablation feeds the 120-dim 3-D log-mel frames directly).

    Arguments
    ---------
    input_size : int
        Features per input frame.
    d_model : int
        Conformer dimension.
    num_layers : int
        Number of Conformer blocks.
    nhead : int
        Attention heads.
    d_ffn : int
        Hidden size of each feed-forward module.
    kernel_size : int
        Depthwise convolution kernel.
    dropout : float
        Dropout inside the blocks.

    Example
    -------
    >>> stack = ConformerStack(120, d_model=64, num_layers=2, nhead=4, d_ffn=128)
    >>> stack(torch.randn(3, 20, 120)).shape
    torch.Size([3, 20, 64])
    """

    def __init__(self, input_size, d_model=256, num_layers=1, nhead=4, d_ffn=1024,
                 kernel_size=31, dropout=0.2):
        super().__init__()
        self.project = (torch.nn.Linear(input_size, d_model) if input_size != d_model
                        else torch.nn.Identity())
        self.pos_enc = RelPosEncXL(d_model)
        self.encoder = ConformerEncoder(num_layers=num_layers, d_model=d_model, d_ffn=d_ffn,
                                        nhead=nhead, kernel_size=kernel_size, dropout=dropout,
                                        attention_type="RelPosMHAXL")
        for layer in self.encoder.layers:
            # The paper's (and Gulati et al.'s) convolution module normalises with
            # BatchNorm after the depthwise convolution; SpeechBrain's uses LayerNorm.
            layer.convolution_module.after_conv[0] = BatchNorm1d(input_size=d_model)

    def forward(self, x):
        """(B, T, input_size) -> (B, T, d_model)."""
        x = self.project(x)
        out, _ = self.encoder(x, pos_embs=self.pos_enc(x))
        return out
