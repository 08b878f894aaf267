"""Acoustic-to-word (A2W) attention encoder-decoder that exposes its decoder states.

H. Feng, S. Ueno, T. Kawahara, "End-to-end speech emotion recognition combined with
acoustic-to-word ASR model", Proc. Interspeech 2020 (ISCA),
sections 3 and 5.3:

    stacked log-mel (+ deltas) -> encoder: 5-layer BiLSTM, 320 cells  -> h_1..h_T
    decoder, per output word l:
        location-based attention over h (equations 7-10)       -> context g_l
        1-layer LSTM, 320 cells                                -> state s_l
        hidden layer with tanh, softmax over the word vocabulary -> P(w_l)

The decoder is SpeechBrain's ``AttentionalRNNDecoder`` with ``LocationAwareAttention``
(as in upstream's attention recipes). Its ``forward`` returns the projected outputs;
:class:`A2WDecoder` steps it with ``forward_step`` and also returns the LSTM states
``s_l``, the "ASR features" that Feng et al. feed to the SER model. Decoding uses
SpeechBrain's ``S2SRNNBeamSearcher`` / ``S2SRNNGreedySearcher`` on the same
embedding, attentional decoder and output layer.

Example
-------
>>> import torch
>>> from speechbrain.nnet.embedding import Embedding
>>> from speechbrain.nnet.RNN import AttentionalRNNDecoder
>>> encoder = A2WEncoder(input_size=480, layers=5, size=320)
>>> decoder = A2WDecoder(
...     embedding=Embedding(num_embeddings=100, embedding_dim=64),
...     attentional_decoder=AttentionalRNNDecoder(
...         rnn_type="lstm", attn_type="location", hidden_size=320, attn_dim=320,
...         num_layers=1, enc_dim=640, input_size=64, channels=10, kernel_size=100),
...     output_layer=TanhLinear(input_size=320, n_neurons=100))
>>> enc = encoder(torch.randn(2, 30, 480), torch.tensor([1.0, 0.5]))
>>> logits, states = decoder(torch.tensor([[1, 5, 7], [1, 9, 0]]), enc, torch.tensor([1.0, 0.5]))
>>> enc.shape, logits.shape, states.shape
(torch.Size([2, 30, 640]), torch.Size([2, 3, 100]), torch.Size([2, 3, 320]))
"""

import torch
from speechbrain.nnet.linear import Linear
from speechbrain.nnet.RNN import LSTM

from speechbrain_ext.nnet.coattention import packable_lengths


class A2WEncoder(torch.nn.Module):
    """Stacked BiLSTM over the (stacked) acoustic frames.

    Arguments
    ---------
    input_size : int
        Size of one input step (120 * the frame stack).
    layers : int
        BiLSTM layers (the paper: 5).
    size : int
        Cells per direction (the paper: 320); the output has ``2 * size`` features.
    dropout : float
        Dropout between the layers (the paper does not say).

    Example
    -------
    >>> enc = A2WEncoder(input_size=120, layers=2, size=16)
    >>> enc(torch.randn(3, 12, 120), torch.tensor([1.0, 0.5, 0.25])).shape
    torch.Size([3, 12, 32])
    """

    def __init__(self, input_size, layers=5, size=320, dropout=0.0):
        super().__init__()
        self.lstm = LSTM(hidden_size=size, input_size=input_size, num_layers=layers,
                         bidirectional=True, dropout=dropout)
        self.output_size = 2 * size

    def forward(self, x, lengths):
        """(batch, time, input_size), relative lengths -> (batch, time, 2 * size)."""
        h, _ = self.lstm(x, lengths=packable_lengths(lengths, x.shape[1]))
        return h


class TanhLinear(Linear):
    """The decoder's tanh hidden layer followed by the output layer: ``W tanh(x) + b``.

    SpeechBrain's attentional decoder already projects ``[context, state]`` to
    ``hidden_size`` (its ``proj``); this adds the tanh of the paper's hidden layer and
    the linear layer under the softmax. A ``Linear`` subclass, so that SpeechBrain's
    searchers read the vocabulary size from ``.w``.

    Arguments
    ---------
    input_size : int
        Size of the decoder's projected output.
    n_neurons : int
        Vocabulary size.

    Example
    -------
    >>> layer = TanhLinear(input_size=4, n_neurons=3)
    >>> x = torch.randn(2, 4)
    >>> torch.allclose(layer(x), layer.w(torch.tanh(x)))
    True
    """

    def __init__(self, input_size, n_neurons):
        super().__init__(n_neurons=n_neurons, input_size=input_size)

    def forward(self, x):
        """Logits over the vocabulary."""
        return super().forward(torch.tanh(x))


class A2WDecoder(torch.nn.Module):
    """Word embedding, attentional LSTM decoder and output layer; returns logits and states.

    Arguments
    ---------
    embedding : torch.nn.Module
        Embedding of the previous word (``speechbrain.nnet.embedding.Embedding``).
    attentional_decoder : speechbrain.nnet.RNN.AttentionalRNNDecoder
        One LSTM layer (the paper: 320 cells) with location-aware attention.
    output_layer : torch.nn.Module
        Maps the decoder's projected output to vocabulary logits (:class:`TanhLinear`).

    Example
    -------
    >>> from speechbrain.nnet.embedding import Embedding
    >>> from speechbrain.nnet.RNN import AttentionalRNNDecoder
    >>> decoder = A2WDecoder(
    ...     Embedding(num_embeddings=10, embedding_dim=8),
    ...     AttentionalRNNDecoder("lstm", "location", hidden_size=16, attn_dim=16,
    ...                           num_layers=1, enc_dim=12, input_size=8, channels=4,
    ...                           kernel_size=5),
    ...     TanhLinear(input_size=16, n_neurons=10))
    >>> logits, states = decoder(torch.tensor([[1, 3]]), torch.randn(1, 7, 12), torch.ones(1))
    >>> logits.shape, states.shape
    (torch.Size([1, 2, 10]), torch.Size([1, 2, 16]))
    """

    def __init__(self, embedding, attentional_decoder, output_layer):
        super().__init__()
        self.embedding = embedding
        self.attentional_decoder = attentional_decoder
        self.output_layer = output_layer
        self.state_size = attentional_decoder.hidden_size

    def forward(self, tokens_bos, enc_states, enc_lens):
        """Teacher-forced pass over ``tokens_bos`` (batch, L): the bos then the words.

        Returns the logits (batch, L, vocabulary) and the decoder LSTM's states
        ``s_l`` (batch, L, hidden_size): step l has read the words before l.
        """
        dec = self.attentional_decoder
        emb = self.embedding(tokens_bos)
        enc_len = torch.round(enc_states.shape[1] * enc_lens).long()  # as dec.forward does
        dec.attn.reset()
        context = enc_states.new_zeros(enc_states.shape[0], dec.attn_dim)
        memory = None
        outputs, states = [], []
        for step in range(emb.shape[1]):
            out, memory, context, _ = dec.forward_step(emb[:, step], memory, context,
                                                        enc_states, enc_len)
            outputs.append(out)
            hidden = memory[0] if isinstance(memory, tuple) else memory  # LSTM: (h, c)
            states.append(hidden[-1])  # the top (here only) layer's h: s_l
        logits = self.output_layer(torch.stack(outputs, dim=1))
        return logits, torch.stack(states, dim=1)


def bos_sequences(token_lists, bos_index, device=None):
    """Word-id lists -> (batch, 1 + longest) tensor starting with ``bos_index``, zero-padded,
    and relative lengths (SpeechBrain convention), as the decoder reads them.

    Example
    -------
    >>> tokens, lens = bos_sequences([[5, 6, 7], [8]], bos_index=1)
    >>> tokens.tolist(), lens.tolist()
    ([[1, 5, 6, 7], [1, 8, 0, 0]], [1.0, 0.5])
    """
    longest = 1 + max((len(t) for t in token_lists), default=0)
    out = torch.zeros(len(token_lists), longest, dtype=torch.long, device=device)
    for i, tokens in enumerate(token_lists):
        out[i, 0] = bos_index
        out[i, 1:1 + len(tokens)] = torch.as_tensor(list(tokens), dtype=torch.long)
    lens = torch.tensor([1 + len(t) for t in token_lists], dtype=torch.float, device=device)
    return out, lens / longest
