"""Structured multi-head self-attention pooling over a BiLSTM (SER streams of Feng et al.).

Z. Lin, M. Feng, C. N. dos Santos, M. Yu, B. Xiang, B. Zhou, Y. Bengio, "A structured
self-attentive sentence embedding", ICLR 2017, arXiv:1703.03130; as used by H. Feng,
S. Ueno, T. Kawahara, "End-to-end speech emotion recognition combined with
acoustic-to-word ASR model", Proc. Interspeech 2020 (ISCA),
equations (3)-(5):

    a_i    = softmax(w2_i tanh(W1 H^T))        one row of attention weights per head i
    head_i = a_i H                             a weighted sum of the BiLSTM states
    M      = Concat(head_1, ..., head_n)       a fixed-length vector

Each SER stream of Feng et al. (log-mel frames, word embeddings or the A2W decoder
states) is a 2-layer BiLSTM of 256 cells (dropout 0.2) and this pooling with 8 heads
and 512 nodes (:class:`AttentiveBiLSTM`); the streams' vectors are concatenated and
classified by a 2048-node ReLU layer and a softmax. Padding never receives weight.

Example
-------
>>> import torch
>>> stream = AttentiveBiLSTM(input_size=40)
>>> stream(torch.randn(2, 75, 40), torch.tensor([1.0, 0.4])).shape   # 8 heads x 512
torch.Size([2, 4096])
"""

import torch
from speechbrain.nnet.RNN import LSTM

from speechbrain_ext.nnet.coattention import packable_lengths, padding_mask


class StructuredSelfAttention(torch.nn.Module):
    """Equations (3)-(5): ``n`` attention heads over a sequence, their weighted sums concatenated.

    Arguments
    ---------
    input_size : int
        Size of each state of H (``2 * cells`` of a BiLSTM).
    attention_size : int
        Rows of W1, the nodes of the attention's hidden layer (d_a in Lin et al.).
    heads : int
        Number of heads (rows of w2).

    Example
    -------
    >>> att = StructuredSelfAttention(input_size=6, attention_size=5, heads=2)
    >>> pooled, weights = att(torch.randn(3, 7, 6), torch.tensor([1.0, 0.5, 0.2]),
    ...                       return_weights=True)
    >>> pooled.shape, weights.shape
    (torch.Size([3, 12]), torch.Size([3, 2, 7]))
    >>> float(weights[1, :, 4:].detach().abs().sum())   # padding of the second sequence
    0.0
    """

    def __init__(self, input_size, attention_size=512, heads=8):
        super().__init__()
        self.W1 = torch.nn.Linear(input_size, attention_size, bias=False)
        self.w2 = torch.nn.Linear(attention_size, heads, bias=False)
        self.heads = heads
        self.output_size = heads * input_size

    def forward(self, H, lengths, return_weights=False):
        """(batch, time, input_size), relative lengths -> (batch, heads * input_size)."""
        scores = self.w2(torch.tanh(self.W1(H))).transpose(1, 2)  # (batch, heads, time)
        mask = padding_mask(lengths, H.shape[1]).unsqueeze(1)
        weights = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
        pooled = torch.bmm(weights, H).flatten(start_dim=1)  # head_i = a_i H, concatenated
        return (pooled, weights) if return_weights else pooled


class AttentiveBiLSTM(torch.nn.Module):
    """A BiLSTM (dropout after each layer) pooled by :class:`StructuredSelfAttention`.

    Arguments
    ---------
    input_size : int
        Size of the stream's features (40 log-mel, 300 word embedding, 320 decoder state).
    lstm_size : int
        Cells per direction (the paper: 256).
    lstm_layers : int
        BiLSTM layers (the paper: 2).
    dropout : float
        Dropout of each BiLSTM layer's output (the paper: 0.2).
    attention_size : int
        Nodes of the attention (the paper: 512).
    heads : int
        Attention heads (the paper: 8).

    Example
    -------
    >>> stream = AttentiveBiLSTM(input_size=320)
    >>> stream(torch.randn(2, 9, 320), torch.tensor([1.0, 0.3])).shape
    torch.Size([2, 4096])
    >>> stream.output_size
    4096
    """

    def __init__(self, input_size, lstm_size=256, lstm_layers=2, dropout=0.2,
                 attention_size=512, heads=8):
        super().__init__()
        # torch's LSTM drops out between layers; the Dropout below covers the last one.
        self.lstm = LSTM(hidden_size=lstm_size, input_size=input_size, num_layers=lstm_layers,
                         bidirectional=True, dropout=dropout)
        self.dropout = torch.nn.Dropout(dropout)
        self.attention = StructuredSelfAttention(2 * lstm_size, attention_size, heads)
        self.output_size = self.attention.output_size

    def forward(self, x, lengths):
        """(batch, time, input_size) (a 4-D input is flattened), relative lengths ->
        (batch, heads * 2 * lstm_size)."""
        if x.dim() == 4:
            x = x.reshape(x.shape[0], x.shape[1], -1)
        h, _ = self.lstm(x, lengths=packable_lengths(lengths, x.shape[1]))
        return self.attention(self.dropout(h), lengths)
