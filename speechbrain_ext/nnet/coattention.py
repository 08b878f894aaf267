"""Co-attention fusion of feature streams (Li, Bell, Lai, ICASSP 2022).

Y. Li, P. Bell, C. Lai, "Fusing ASR outputs in joint training for speech emotion
recognition", Proc. ICASSP 2022, doi:10.1109/ICASSP43922.2022.9746289, sections 4.1-4.2.

Each stream (MFCCs, ASR hidden states, BERT token states) is encoded by a
:class:`StreamEncoder` (2-layer BiLSTM, 32 units, dropout 0.5, then self-attention
with 16 heads over 64 nodes) into a sequence of 64-d states. A fusion head turns
the encoded streams into one fixed-length vector for the emotion classifier:

- :class:`ConcatFusion`: the masked mean of each stream, concatenated (Fig. 1a);
- :class:`CoAttentionFusion`: for each pair (A, B), :class:`CoAttention`, i.e.
  equations (1)-(4): ``H_C1 = MultiHead(Q_A, K_B, V_B) W^O`` (A's frames attend to B)
  and ``H_C2 = MultiHead(Q_B, K_A, V_A) W^O``, each pooled over its query's frames,
  ``H_C = Concat(H_C1, H_C2)``; the pairs' vectors concatenated (Fig. 1b);
- :class:`HierarchicalCoAttentionFusion`: co-attention of streams 0 and 1 (MFCC
  with wav2vec2: frame level with utterance level), whose two directions, joined
  along time, then co-attend with stream 2 (BERT: dialog level), and so on (Fig. 1c).

Sequences come with SpeechBrain's relative lengths; padding never enters an
attention (key padding mask) or a pooled mean.

Example
-------
>>> import torch
>>> mfcc, hidden, text = torch.randn(2, 50, 40), torch.randn(2, 30, 768), torch.randn(2, 9, 768)
>>> lens = [torch.tensor([1.0, 0.6])] * 3
>>> encoders = [StreamEncoder(40), StreamEncoder(768), StreamEncoder(768)]
>>> states = [enc(x, n) for enc, x, n in zip(encoders, [mfcc, hidden, text], lens)]
>>> states[0].shape   # 64 nodes: 2 directions x 32 units
torch.Size([2, 50, 64])
>>> fusion = HierarchicalCoAttentionFusion(embed_dim=64, num_heads=16, n_streams=3)
>>> fusion(states, lens).shape, fusion.output_size
(torch.Size([2, 128]), 128)
"""

import torch
from speechbrain.dataio.dataio import length_to_mask
from speechbrain.nnet.attention import MultiheadAttention
from speechbrain.nnet.RNN import LSTM


def padding_mask(lengths, max_len):
    """Relative lengths (batch,) -> bool (batch, max_len), True on the padding.

    At least one step stays valid, so that an attention always has a key.

    Example
    -------
    >>> padding_mask(torch.tensor([1.0, 0.5]), 4)
    tensor([[False, False, False, False],
            [False, False,  True,  True]])
    """
    steps = torch.round(lengths * max_len).long().clamp(min=1, max=max_len)
    return ~length_to_mask(steps, max_len=max_len, device=lengths.device).bool()


def packable_lengths(lengths, max_len):
    """Relative lengths that SpeechBrain's RNN packing turns into the rounded step counts.

    ``speechbrain.nnet.RNN`` packs ``lengths * max_len`` cast to integers, which
    truncates: 7 steps of 12 given as 7 / 12 can become 6.999 and so 6. Half a step
    more makes the truncation a rounding.

    Example
    -------
    >>> lengths = packable_lengths(torch.tensor([7 / 12, 1.0]), 12)
    >>> (lengths * 12).long().tolist()
    [7, 12]
    """
    steps = torch.round(lengths * max_len).clamp(min=1, max=max_len)
    return torch.clamp(steps + 0.5, max=max_len) / max_len


def masked_mean(states, pad_mask):
    """Mean of (batch, time, dim) ``states`` over the steps where ``pad_mask`` is False.

    Example
    -------
    >>> masked_mean(torch.tensor([[[1.0], [3.0], [100.0]]]), torch.tensor([[False, False, True]]))
    tensor([[2.]])
    """
    keep = (~pad_mask).unsqueeze(-1).to(states.dtype)
    return (states * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)


class StreamEncoder(torch.nn.Module):
    """BiLSTM layers, each followed by dropout, then multi-head self-attention.

    Arguments
    ---------
    input_size : int
        Size of the stream's features (40 MFCCs, 768 for wav2vec2-base or BERT-base).
    lstm_size : int
        Hidden units per direction (the paper: 32); the output has ``2 * lstm_size``
        nodes (64), the size of the self-attention.
    lstm_layers : int
        BiLSTM layers (the paper: 2).
    dropout : float
        Dropout after every BiLSTM layer (the paper: 0.5).
    attention_heads : int
        Heads of the self-attention (the paper: 16); must divide ``2 * lstm_size``.

    Example
    -------
    >>> enc = StreamEncoder(input_size=768)
    >>> enc(torch.randn(3, 20, 768), torch.tensor([1.0, 0.5, 0.2])).shape
    torch.Size([3, 20, 64])
    >>> enc.self_attention.att.num_heads
    16
    """

    def __init__(self, input_size, lstm_size=32, lstm_layers=2, dropout=0.5, attention_heads=16):
        super().__init__()
        # torch's LSTM drops out between layers; the Dropout below covers the last one.
        self.lstm = LSTM(hidden_size=lstm_size, input_size=input_size, num_layers=lstm_layers,
                         bidirectional=True, dropout=dropout)
        self.dropout = torch.nn.Dropout(dropout)
        self.output_size = 2 * lstm_size
        self.self_attention = MultiheadAttention(nhead=attention_heads, d_model=self.output_size)

    def forward(self, x, lengths):
        """(batch, time, input_size), relative lengths -> (batch, time, 2 * lstm_size)."""
        h, _ = self.lstm(x, lengths=packable_lengths(lengths, x.shape[1]))
        h = self.dropout(h)
        mask = padding_mask(lengths, h.shape[1])
        out, _ = self.self_attention(h, h, h, key_padding_mask=mask)
        return out


class CoAttention(torch.nn.Module):
    """Equations (2)-(4) in both directions: A's queries over B's keys and values, and back.

    ``MultiHead(Q_A, K_B, V_B) W^O = Concat(head_1..head_n) W^O`` with
    ``head_i = Attention(Q_A W^Q_i, K_B W^K_i, V_B W^V_i)``; the second direction
    has its own weights. Returns the two sequences: ``h_a`` on A's time axis (A
    enriched by B) and ``h_b`` on B's.

    Arguments
    ---------
    embed_dim : int
        Size of both streams' states (64 in the paper's model).
    num_heads : int
        Heads n (the paper: 16).
    dropout : float
        Dropout on the attention weights.

    Example
    -------
    >>> coatt = CoAttention(embed_dim=64, num_heads=16)
    >>> a, b = torch.randn(2, 7, 64), torch.randn(2, 4, 64)
    >>> h_a, h_b = coatt(a, b, padding_mask(torch.ones(2), 7), padding_mask(torch.ones(2), 4))
    >>> h_a.shape, h_b.shape
    (torch.Size([2, 7, 64]), torch.Size([2, 4, 64]))
    """

    def __init__(self, embed_dim=64, num_heads=16, dropout=0.0):
        super().__init__()
        self.a_from_b = MultiheadAttention(nhead=num_heads, d_model=embed_dim, dropout=dropout)
        self.b_from_a = MultiheadAttention(nhead=num_heads, d_model=embed_dim, dropout=dropout)

    def forward(self, a, b, a_pad, b_pad):
        """(batch, T_a, d), (batch, T_b, d) and their padding masks -> (h_a, h_b)."""
        h_a, _ = self.a_from_b(a, b, b, key_padding_mask=b_pad)
        h_b, _ = self.b_from_a(b, a, a, key_padding_mask=a_pad)
        return h_a, h_b


class ConcatFusion(torch.nn.Module):
    """Masked mean of every stream, concatenated (fusion (a)).

    Arguments
    ---------
    embed_dim : int
        Size of each stream's states.
    n_streams : int
        Number of streams.

    Example
    -------
    >>> fusion = ConcatFusion(embed_dim=64, n_streams=2)
    >>> fusion([torch.randn(2, 5, 64), torch.randn(2, 3, 64)], [torch.ones(2)] * 2).shape
    torch.Size([2, 128])
    """

    def __init__(self, embed_dim=64, n_streams=3):
        super().__init__()
        self.output_size = embed_dim * n_streams

    def forward(self, streams, lengths):
        """List of (batch, T_i, d), list of relative lengths -> (batch, n_streams * d)."""
        return torch.cat([masked_mean(s, padding_mask(n, s.shape[1]))
                          for s, n in zip(streams, lengths)], dim=-1)


class CoAttentionFusion(torch.nn.Module):
    """Co-attention of each listed pair of streams, the pairs' vectors concatenated
    (fusion (b), equation (1) per pair).

    Arguments
    ---------
    embed_dim : int
        Size of each stream's states.
    num_heads : int
        Heads of each co-attention (the paper: 16).
    pairs : list of [int, int]
        Stream indices that co-attend; ``[[0, 1], [0, 2]]``: the acoustic stream
        (0) with each ASR stream.
    dropout : float
        Dropout on the attention weights.

    Example
    -------
    >>> fusion = CoAttentionFusion(embed_dim=64, num_heads=16, pairs=[[0, 1]])
    >>> fusion([torch.randn(2, 5, 64), torch.randn(2, 3, 64)], [torch.ones(2)] * 2).shape
    torch.Size([2, 128])
    """

    def __init__(self, embed_dim=64, num_heads=16, pairs=((0, 1),), dropout=0.0):
        super().__init__()
        self.pairs = [tuple(p) for p in pairs]
        self.coattentions = torch.nn.ModuleList(
            [CoAttention(embed_dim, num_heads, dropout) for _ in self.pairs])
        self.output_size = 2 * embed_dim * len(self.pairs)

    def forward(self, streams, lengths):
        """List of (batch, T_i, d), list of relative lengths -> (batch, 2 * d * n_pairs)."""
        masks = [padding_mask(n, s.shape[1]) for s, n in zip(streams, lengths)]
        fused = []
        for (i, j), coattention in zip(self.pairs, self.coattentions):
            h_i, h_j = coattention(streams[i], streams[j], masks[i], masks[j])
            fused += [masked_mean(h_i, masks[i]), masked_mean(h_j, masks[j])]  # H_C1, H_C2
        return torch.cat(fused, dim=-1)


class HierarchicalCoAttentionFusion(torch.nn.Module):
    """Streams fused from low to high level by co-attention (fusion (c)).

    Level 1 co-attends stream 0 with stream 1; its two directions, joined along time
    (A's frames enriched by B, then B's enriched by A), form the sequence that
    co-attends with stream 2 at level 2, and so on. The last level's two directions
    are pooled and concatenated (equation (1)). The order of ``streams`` is the
    hierarchy: MFCC (frame level), wav2vec2 (utterance level), BERT (dialog level).

    Arguments
    ---------
    embed_dim : int
        Size of each stream's states.
    num_heads : int
        Heads of each co-attention (the paper: 16).
    n_streams : int
        Number of streams (levels + 1).
    dropout : float
        Dropout on the attention weights.

    Example
    -------
    >>> fusion = HierarchicalCoAttentionFusion(embed_dim=64, num_heads=16, n_streams=3)
    >>> len(fusion.levels), fusion.output_size
    (2, 128)
    """

    def __init__(self, embed_dim=64, num_heads=16, n_streams=3, dropout=0.0):
        super().__init__()
        if n_streams < 2:
            raise ValueError("hierarchical co-attention needs at least two streams")
        self.levels = torch.nn.ModuleList(
            [CoAttention(embed_dim, num_heads, dropout) for _ in range(n_streams - 1)])
        self.output_size = 2 * embed_dim

    def forward(self, streams, lengths):
        """List of (batch, T_i, d), list of relative lengths -> (batch, 2 * d)."""
        if len(streams) != len(self.levels) + 1:
            raise ValueError(f"expected {len(self.levels) + 1} streams, got {len(streams)}")
        masks = [padding_mask(n, s.shape[1]) for s, n in zip(streams, lengths)]
        low, low_mask = streams[0], masks[0]
        for level, (high, high_mask) in enumerate(zip(streams[1:], masks[1:])):
            h_low, h_high = self.levels[level](low, high, low_mask, high_mask)
            if level == len(self.levels) - 1:
                return torch.cat([masked_mean(h_low, low_mask),
                                  masked_mean(h_high, high_mask)], dim=-1)
            low = torch.cat([h_low, h_high], dim=1)  # padding masked inside, not at the end
            low_mask = torch.cat([low_mask, high_mask], dim=1)
