"""Fusion heads of acoustic and linguistic utterance embeddings.

``ResidualMLP`` is the "MLP with skip connections" of Bansal et al. (2023, sec. 3.2):
each embedding (mean-pooled acoustic frames, pooled BERT tokens) goes through its
own ``ResidualMLP`` before the two are concatenated for the emotion classifier.

    x -> Linear(input_size, hidden_size) -> h_0
    h_k = h_{k-1} + Dropout(ReLU(Linear(LayerNorm(h_{k-1}))))     k = 1 .. n_blocks

The input projection puts both embeddings in the same width (the acoustic encoder's
and BERT's sizes differ), the pre-norm residual blocks are the skip connections.
``TokenMeanPooling`` averages a text encoder's token states over the real tokens.

Example
-------
>>> import torch
>>> mlp = ResidualMLP(input_size=320, hidden_size=256, n_blocks=2)
>>> mlp(torch.randn(4, 320)).shape
torch.Size([4, 256])
>>> pool = TokenMeanPooling()
>>> states = torch.tensor([[[1.0], [3.0], [100.0]]])
>>> pool(states, torch.tensor([[1, 1, 0]]))   # the padded token is ignored
tensor([[2.]])
"""

import torch


class ResidualBlock(torch.nn.Module):
    """``h + Dropout(ReLU(Linear(LayerNorm(h))))``: one feed-forward layer with a skip.

    Arguments
    ---------
    size : int
        Size of ``h`` (input and output).
    dropout : float
        Dropout after the ReLU.

    Example
    -------
    >>> ResidualBlock(16)(torch.randn(4, 16)).shape
    torch.Size([4, 16])
    """

    def __init__(self, size, dropout=0.1):
        super().__init__()
        self.norm = torch.nn.LayerNorm(size)
        self.linear = torch.nn.Linear(size, size)
        self.dropout = torch.nn.Dropout(dropout)

    def forward(self, h):
        """(batch, size) -> (batch, size): ``h`` plus its transformation."""
        return h + self.dropout(torch.relu(self.linear(self.norm(h))))


class ResidualMLP(torch.nn.Module):
    """Input projection, then ``n_blocks`` residual feed-forward blocks.

    Arguments
    ---------
    input_size : int
        Size of the embedding in.
    hidden_size : int
        Size of the projection and of every block (the output size).
    n_blocks : int
        Number of residual blocks (skip connections).
    dropout : float
        Dropout inside each block.

    Example
    -------
    >>> ResidualMLP(input_size=384, hidden_size=256)(torch.randn(4, 384)).shape
    torch.Size([4, 256])
    """

    def __init__(self, input_size, hidden_size=256, n_blocks=2, dropout=0.1):
        super().__init__()
        self.projection = torch.nn.Linear(input_size, hidden_size)
        self.blocks = torch.nn.ModuleList(
            [ResidualBlock(hidden_size, dropout) for _ in range(n_blocks)])

    def forward(self, x):
        """(batch, input_size) -> (batch, hidden_size)."""
        h = self.projection(x)
        for block in self.blocks:
            h = block(h)
        return h


class TokenMeanPooling(torch.nn.Module):
    """Mean of token states over the tokens of ``attention_mask`` (1 = real token).

    Example
    -------
    >>> states = torch.tensor([[[2.0], [4.0], [9.0]]])
    >>> TokenMeanPooling()(states, torch.tensor([[1, 1, 0]]))
    tensor([[3.]])
    """

    def forward(self, states, attention_mask):
        """(batch, tokens, dim), (batch, tokens) -> (batch, dim)."""
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
