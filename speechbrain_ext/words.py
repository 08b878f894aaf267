"""A word vocabulary for acoustic-to-word ASR and word embeddings: a SentencePiece word model.

SentencePiece's ``word`` model keeps the ``vocab_size`` most frequent words of a
training text (whitespace-split, no normalisation) and maps every other word to
``<unk>``. SpeechBrain 1.1's ``speechbrain.tokenizers.SentencePiece`` wrapper accepts
only ``unigram``, ``bpe`` and ``char``, so this trains SentencePiece directly. Ids:
``<unk>`` 0, ``<s>`` 1 (bos), ``</s>`` 2 (eos), then the words by frequency.

Example
-------
>>> import tempfile
>>> vocab = WordVocabulary.train(["THE CAT SAT", "THE DOG SAT", "THE END"],
...                              tempfile.mkdtemp() + "/words", vocab_size=100)
>>> len(vocab), vocab.decode(vocab.encode("THE DOG"))   # <unk>, <s>, </s> + 5 words
(8, 'THE DOG')
>>> vocab.encode("THE ZEBRA")[1] == vocab.unk_index
True
"""

import os

import sentencepiece as spm
import speechbrain as sb
import torch
from speechbrain.utils.checkpoints import mark_as_transfer, register_checkpoint_hooks


@register_checkpoint_hooks
class WordVocabulary:
    """Encode word strings to ids and back with a SentencePiece word model.

    Arguments
    ---------
    model_file : str, optional
        A ``.model`` file written by :meth:`train`; without it, call :meth:`load`.

    Example
    -------
    >>> import tempfile
    >>> path = WordVocabulary.train(["A B", "B C"], tempfile.mkdtemp() + "/w").model_file
    >>> WordVocabulary(path).decode([5, 4])
    'C A'
    """

    unk_index, bos_index, eos_index = 0, 1, 2

    def __init__(self, model_file=None):
        self.sp = spm.SentencePieceProcessor()
        self.model_file = None
        if model_file is not None:
            self.load(model_file)

    @mark_as_transfer
    def load(self, model_file, *args):
        """Load a ``.model`` file (also the Pretrainer's hook: an exported model folder
        holds it as ``<name>.ckpt``)."""
        model_file = str(model_file)
        if not os.path.exists(model_file):
            raise FileNotFoundError(f"word model {model_file} not found")
        self.model_file = model_file
        self.sp.load(model_file)
        specials = (self.sp.unk_id(), self.sp.bos_id(), self.sp.eos_id())
        if specials != (self.unk_index, self.bos_index, self.eos_index):
            raise ValueError(f"{model_file}: unk/bos/eos ids {specials}, expected 0/1/2")

    @classmethod
    def train(cls, sentences, model_prefix, vocab_size=10000):
        """Train on ``sentences`` (word strings); keep at most ``vocab_size`` entries
        (three of them ``<unk>``, ``<s>``, ``</s>``). Returns the vocabulary."""
        os.makedirs(os.path.dirname(os.path.abspath(model_prefix)), exist_ok=True)
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(list(sentences)), model_prefix=model_prefix,
            model_type="word", vocab_size=vocab_size, hard_vocab_limit=False,
            normalization_rule_name="identity", character_coverage=1.0,
            unk_id=cls.unk_index, bos_id=cls.bos_index, eos_id=cls.eos_index, pad_id=-1,
            minloglevel=2)
        return cls(model_prefix + ".model")

    def __len__(self):
        return self.sp.get_piece_size()

    def encode(self, words):
        """``"THE CAT"`` -> word ids (``unk_index`` for a word not in the vocabulary)."""
        return self.sp.encode(" ".join(words.split()))

    def decode(self, ids):
        """Word ids -> ``"THE CAT"``; bos / eos dropped, ``<unk>`` kept as a word."""
        pieces = [self.sp.id_to_piece(int(i)) for i in ids
                  if int(i) not in (self.bos_index, self.eos_index)]
        return " ".join(p.lstrip("\u2581") for p in pieces)

    def target_pipeline(self):
        """Dynamic item ``words`` -> ``tokens_bos`` (bos + ids, the decoder's input) and
        ``tokens_eos`` (ids + eos, its target), for a ``DynamicItemDataset``."""
        @sb.utils.data_pipeline.takes("words")
        @sb.utils.data_pipeline.provides("tokens_bos", "tokens_eos")
        def pipeline(words):
            ids = self.encode(words)
            yield torch.LongTensor([self.bos_index] + ids)
            yield torch.LongTensor(ids + [self.eos_index])

        return pipeline
