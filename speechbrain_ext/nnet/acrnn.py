"""ACRNN (Chen et al. 2018): 3-D log-mel -> CNN -> BiLSTM -> attention -> FC, the CoRNN baseline.

Sizes: Chen, He, Yang, Zhang, "3-D Convolutional Recurrent Neural Networks With
Attention Model for Speech Emotion Recognition", IEEE SPL 25(10), 2018 (first
convolution 128 feature maps, the others 256, filters 5 x 3 (time x frequency),
max-pooling 2 x 4 after the first convolution, a 768-unit linear layer, a BiLSTM
of 128 cells per direction, attention, a 64-unit fully connected layer, on 3-s
segments of 3-D log-mel). What the paper does not fix is taken from the public
TensorFlow implementation of that model (xuanjihe/speech-emotion-recognition):
6 convolutional layers with ReLU and dropout, BatchNorm + ReLU after the linear
layer, and an attention of size 1 with a sigmoid (``AttentivePooling``).

Example
-------
>>> import torch
>>> front = ACRNNConvFrontEnd()
>>> x = front(torch.randn(2, 300, 40, 3))
>>> x.shape   # time halved by the 2 x 4 max-pooling
torch.Size([2, 150, 768])
>>> AttentivePooling(256)(torch.randn(2, 150, 256), torch.tensor([1.0, 0.5])).shape
torch.Size([2, 1, 256])
"""

import torch


class ACRNNConvFrontEnd(torch.nn.Module):
    """2-D CNN over (time, mel) with the 3 log-mel channels as input maps, then a linear layer.

    Arguments
    ---------
    n_mels : int
        Mel bins of the input.
    in_channels : int
        Input maps (3: static, delta, delta-delta).
    first_channels : int
        Maps of the first convolution.
    channels : int
        Maps of the other convolutions.
    num_layers : int
        Number of convolutions.
    kernel_size : tuple of int
        (time, frequency) filter size.
    pool : tuple of int
        (time, frequency) max-pooling after the first convolution.
    linear_size : int
        Output features per frame.
    dropout : float
        Dropout after each convolution.

    Example
    -------
    >>> front = ACRNNConvFrontEnd()
    >>> front(torch.randn(2, 300, 40, 3)).shape   # time halved by the first pooling
    torch.Size([2, 150, 768])
    """

    def __init__(self, n_mels=40, in_channels=3, first_channels=128, channels=256,
                 num_layers=6, kernel_size=(5, 3), pool=(2, 4), linear_size=768, dropout=0.2):
        super().__init__()
        padding = (kernel_size[0] // 2, kernel_size[1] // 2)
        maps = [in_channels, first_channels] + [channels] * (num_layers - 1)
        layers = []
        for i in range(num_layers):
            layers += [torch.nn.Conv2d(maps[i], maps[i + 1], kernel_size, padding=padding),
                       torch.nn.ReLU()]
            if i == 0:
                layers.append(torch.nn.MaxPool2d(pool))
            layers.append(torch.nn.Dropout(dropout))
        self.cnn = torch.nn.Sequential(*layers)
        self.linear = torch.nn.Linear(maps[-1] * (n_mels // pool[1]), linear_size)
        self.norm = torch.nn.BatchNorm1d(linear_size)

    def forward(self, x):
        """(B, T, n_mels, C) -> (B, T / pool_t, linear_size)."""
        x = self.cnn(x.permute(0, 3, 1, 2))  # (B, maps, T', F')
        x = x.permute(0, 2, 1, 3).flatten(2)  # (B, T', maps * F')
        x = self.linear(x)
        return torch.relu(self.norm(x.transpose(1, 2)).transpose(1, 2))


class AttentivePooling(torch.nn.Module):
    """Attention-weighted sum over the valid frames: (B, T, D), lengths -> (B, 1, D).

    ``a_t = softmax_t(u . sigmoid(W x_t + b))``, padded frames excluded; the output
    shape is that of ``speechbrain.nnet.pooling.StatisticsPooling``, so a YAML can
    swap the two.

    Arguments
    ---------
    input_size : int
        Features per frame.
    attention_size : int
        Hidden size of the scoring layer.

    Example
    -------
    >>> pool = AttentivePooling(8)
    >>> pool(torch.randn(2, 5, 8), torch.tensor([1.0, 0.6])).shape
    torch.Size([2, 1, 8])
    """

    def __init__(self, input_size, attention_size=1):
        super().__init__()
        self.hidden = torch.nn.Linear(input_size, attention_size)
        self.score = torch.nn.Linear(attention_size, 1, bias=False)

    def forward(self, x, lengths=None):
        """(B, T, D) and relative lengths (None: all frames valid) -> (B, 1, D)."""
        scores = self.score(torch.sigmoid(self.hidden(x))).squeeze(-1)  # (B, T)
        if lengths is not None:
            valid = torch.arange(x.shape[1], device=x.device)[None, :] < torch.round(
                lengths * x.shape[1]).clamp(min=1)[:, None]
            scores = scores.masked_fill(~valid, float("-inf"))
        weights = torch.softmax(scores, dim=1)
        return torch.bmm(weights.unsqueeze(1), x)
