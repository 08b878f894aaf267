"""Which hidden layer of an ASR encoder feeds a downstream model.

An encoder called with ``output_all_hiddens=True`` (SpeechBrain's ``Wav2Vec2``
wrapper, the project's ``LogMelCRNN``) returns ``L + 1`` hidden states: index 0 is
the initial embeddings (wav2vec2: the CNN features after projection and positional
convolution; the CRNN: its convolution's output), index ``L`` the final layer.
Li et al. (ICASSP 2022, Table 4) compare the ``first`` (initial embeddings),
``middle`` and ``final`` layers; ``middle`` is layer ``ceil(L / 2)``: 6 of 12 for
wav2vec2-base, 2 of 3 for the CRNN's BiGRU stack.

Example
-------
>>> layer_index("middle", n_states=13)   # wav2vec2-base: embeddings + 12 layers
6
>>> hiddens = [f"h{i}" for i in range(4)]  # the CRNN: conv + 3 BiGRU layers
>>> [select_hidden_layer(hiddens, name) for name in ("first", "middle", "final")]
['h0', 'h2', 'h3']
"""

LAYER_NAMES = ("first", "middle", "final")


def layer_index(layer, n_states):
    """Index of ``layer`` (``first``, ``middle``, ``final`` or an int) among ``n_states``
    hidden states (embeddings + ``n_states - 1`` layers)."""
    if isinstance(layer, int):
        if not -n_states <= layer < n_states:
            raise ValueError(f"hidden layer {layer} out of range for {n_states} hidden states")
        return layer % n_states
    if layer not in LAYER_NAMES:
        raise ValueError(f"hidden layer {layer!r}: choose first, middle, final or an index")
    n_layers = n_states - 1
    return {"first": 0, "middle": (n_layers + 1) // 2, "final": n_layers}[layer]


def select_hidden_layer(hidden_states, layer):
    """The hidden state named ``layer`` from a list (or stacked tensor) of hidden states."""
    return hidden_states[layer_index(layer, len(hidden_states))]


def without_layerdrop(wav2vec2):
    """SpeechBrain's ``Wav2Vec2`` wrapper with its HF model's LayerDrop switched off.

    With ``output_all_hiddens=True`` a downstream model reads hidden layers by index.
    Since transformers 5 the hidden states are captured at the layers that run, so in
    training LayerDrop (``layerdrop: 0.1`` in the released wav2vec2 configs) returns
    fewer than ``L + 1`` states, a different number each batch: ``middle`` then names
    another layer, and with every layer dropped none is returned. transformers 4
    repeated a dropped layer's input instead. Evaluation never drops layers.

    Arguments
    ---------
    wav2vec2 : speechbrain.integrations.huggingface.wav2vec2.Wav2Vec2
        The wrapper; its ``model.config.layerdrop`` is set to 0.

    Returns
    -------
    The same wrapper.

    Example
    -------
    >>> from types import SimpleNamespace
    >>> wrapper = SimpleNamespace(model=SimpleNamespace(config=SimpleNamespace(layerdrop=0.1)))
    >>> without_layerdrop(wrapper).model.config.layerdrop
    0.0
    """
    wav2vec2.model.config.layerdrop = 0.0
    return wav2vec2
