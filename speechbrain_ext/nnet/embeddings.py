"""Heads for encoders that pool inside, such as SpeechBrain's ECAPA-TDNN.

An SER script that chains ``encoder -> pooling -> classifier -> log_softmax`` (the
joint ASR-SER recipe's SER baseline) can run such a model from YAML. ECAPA-TDNN already ends in
attentive statistics pooling and returns one ``(batch, 1, dim)`` embedding per
utterance, and upstream SpeechBrain's IEMOCAP ECAPA recipe classifies it with a
cosine classifier trained through an additive angular margin. These two modules fill
the chain's pooling and log-softmax slots for that model.
"""

import torch


class EncoderPooled(torch.nn.Module):
    """The pooling step of an encoder that pooled already: its embedding, unchanged.

    Pooling a single frame again would be wrong, not only useless: relative lengths
    below 0.5 round to zero valid frames.

    Arguments
    ---------
    None

    Example
    -------
    >>> embedding = torch.randn(2, 1, 96)
    >>> bool((EncoderPooled()(embedding, torch.tensor([1.0, 0.3])) == embedding).all())
    True
    """

    def forward(self, embeddings, lengths=None):
        """Returns ``embeddings``; ``lengths`` is accepted for the pooling interface."""
        return embeddings


class ScaledLogSoftmax(torch.nn.Module):
    """Log-posteriors of cosine scores: ``log_softmax(scale * cosine)``.

    With ``scale`` the additive angular margin loss's scale, this is the distribution
    that loss trains, without the margin (which needs the target and applies in
    training only); its arg-max is the cosine classifier's decision.

    Arguments
    ---------
    scale : float
        The scale ``s`` of the angular margin loss (upstream's ECAPA recipe: 30).

    Example
    -------
    >>> cosines = torch.tensor([[0.5, -0.5]])
    >>> ScaledLogSoftmax(scale=2.0)(cosines).exp()
    tensor([[0.8808, 0.1192]])
    """

    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, cosines):
        """``(batch, n_classes)`` cosines -> log-posteriors of the same shape."""
        return torch.log_softmax(self.scale * cosines, dim=-1)
