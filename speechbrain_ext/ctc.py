"""Character CTC: the text normalisation, the character set, targets, transcripts.

Every CTC model of the project (stand-in pre-training on LibriSpeech, ASR baseline,
joint ASR-SER) uses the same output units, so a head pre-trained on LibriSpeech is
fine-tuned on IEMOCAP without remapping: index 0 is the CTC blank, then the space,
the apostrophe and A-Z: the alphabet ``normalize_words`` leaves in the prepared
``words`` fields (both live here so that they cannot disagree).

Example
-------
>>> import torch
>>> encoder = character_encoder()
>>> len(encoder), encoder.lab2ind[BLANK]
(29, 0)
>>> encoder.encode_sequence(list("HI A"))
[10, 11, 1, 3]
>>> # Frames: H H <blank> I <space> A A -> "HI A" (repeats merged, blanks dropped)
>>> ids = [10, 10, 0, 11, 1, 3, 3]
>>> log_probs = torch.nn.functional.one_hot(torch.tensor([ids]), len(encoder)).float().log()
>>> greedy_transcripts(log_probs, torch.tensor([1.0]), encoder)
['HI A']
>>> BeamSearchTranscripts(beam_size=4)(log_probs.clamp(min=-30), torch.tensor([1.0]), encoder)
['HI A']
"""

import re

import speechbrain as sb
import torch
from speechbrain.decoders.ctc import CTCBeamSearcher

BLANK = "<blank>"
CHARACTERS = [" ", "'"] + [chr(c) for c in range(ord("A"), ord("Z") + 1)]
_NOT_A_CHARACTER = re.compile("[^" + re.escape("".join(CHARACTERS)) + "]")


def normalize_words(text):
    """Upper-case words for ASR: no ``[TAGS]``, only letters, apostrophes and spaces.

    Example
    -------
    >>> normalize_words("Oh, [LAUGHTER] that's GREAT!")
    "OH THAT'S GREAT"
    """
    text = re.sub(r"\[[^\]]*\]", " ", text).upper()
    text = _NOT_A_CHARACTER.sub(" ", text)
    return " ".join(text.split())


def character_encoder():
    """A ``CTCTextEncoder`` with the blank at index 0 and ``CHARACTERS`` after it."""
    encoder = sb.dataio.encoder.CTCTextEncoder()
    encoder.insert_blank(BLANK, index=0)
    encoder.update_from_iterable(CHARACTERS, sequence_input=False)
    encoder.expect_len(len(CHARACTERS) + 1)
    return encoder


def ctc_target_pipeline(encoder):
    """Dynamic item ``words`` -> ``tokens`` (character indices, the CTC target) for a
    ``DynamicItemDataset``.

    Example
    -------
    >>> pipeline = ctc_target_pipeline(character_encoder())
    >>> pipeline("HI A").tolist()
    [10, 11, 1, 3]
    """
    @sb.utils.data_pipeline.takes("words")
    @sb.utils.data_pipeline.provides("tokens")
    def text_pipeline(words):
        return torch.LongTensor(encoder.encode_sequence(list(words)))

    return text_pipeline


def greedy_transcripts(log_probs, lens, encoder):
    """Greedy CTC decoding of (batch, frames, units) log-probabilities to word strings."""
    sequences = sb.decoders.ctc_greedy_decode(log_probs, lens, blank_id=encoder.lab2ind[BLANK])
    return [" ".join("".join(encoder.decode_ndim(seq)).split()) for seq in sequences]


class BeamSearchTranscripts:
    """Beam-search alternative to :func:`greedy_transcripts`, same call signature.

    SpeechBrain's ``CTCBeamSearcher`` without a language model; in a YAML::

        ctc_decoder: !new:speechbrain_ext.ctc.BeamSearchTranscripts
            beam_size: 10

    Arguments
    ---------
    beam_size : int
        Number of hypotheses kept.
    **kwargs
        Passed to ``CTCBeamSearcher`` (e.g. ``beam_prune_logp``, ``kenlm_model_path``).
    """

    def __init__(self, beam_size=10, **kwargs):
        encoder = character_encoder()
        vocab = [encoder.ind2lab[i] for i in range(len(encoder))]
        self.searcher = CTCBeamSearcher(blank_index=encoder.lab2ind[BLANK], vocab_list=vocab,
                                        space_token=" ", beam_size=beam_size, **kwargs)

    def __call__(self, log_probs, lens, encoder):
        best = [hyps[0].text for hyps in self.searcher(log_probs.detach().cpu(), lens.cpu())]
        return [" ".join(text.split()) for text in best]


def load_released_ctc_head(ctc_lin, source, cache_dir=None):
    """Copy a released Hugging Face wav2vec2 CTC model's output layer into ``ctc_lin``.

    ``facebook/wav2vec2-base-960h`` and its kin transcribe with a linear layer over
    32 characters (``<pad>`` is the blank, ``|`` the word delimiter). Its rows are
    copied, in this module's order (blank, space, apostrophe, A-Z), into ``ctc_lin``
    (a SpeechBrain ``Linear``), so that the encoder with this head transcribes from
    the first epoch, as released.

    Arguments
    ---------
    ctc_lin : speechbrain.nnet.linear.Linear
        ``input_size`` = the model's hidden size, ``n_neurons`` = ``len(CHARACTERS) + 1``.
    source : str
        Hub id or local folder of a ``Wav2Vec2ForCTC`` with its tokenizer (vocab.json).
    cache_dir : str, optional
        Where the hub download goes.
    """
    from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2ForCTC

    model = Wav2Vec2ForCTC.from_pretrained(source, cache_dir=cache_dir)
    tokenizer = Wav2Vec2CTCTokenizer.from_pretrained(source, cache_dir=cache_dir)
    vocab = tokenizer.get_vocab()
    released = {BLANK: tokenizer.pad_token, " ": tokenizer.word_delimiter_token}
    encoder = character_encoder()
    rows = []
    for index in range(len(encoder)):
        unit = encoder.ind2lab[index]
        token = released.get(unit, unit)
        if token not in vocab:
            raise ValueError(f"{source}: its vocabulary has no {token!r} for CTC unit {unit!r}")
        rows.append(vocab[token])
    weight, bias = model.lm_head.weight.data, model.lm_head.bias.data
    if tuple(ctc_lin.w.weight.shape) != (len(rows), weight.shape[1]):
        raise ValueError(f"ctc_lin is {tuple(ctc_lin.w.weight.shape)}, the released head "
                         f"needs ({len(rows)}, {weight.shape[1]})")
    with torch.no_grad():
        ctc_lin.w.weight.copy_(weight[rows])
        ctc_lin.w.bias.copy_(bias[rows])
