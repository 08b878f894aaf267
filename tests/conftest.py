"""Shared fixtures: the tiny synthetic corpora, a tiny random wav2vec2 folder, recipe runs."""

import glob
import hashlib
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _results_entries():
    """The repository's ``results/``, two levels deep."""
    return set(glob.glob(os.path.join(REPO, "results", "*"))
               + glob.glob(os.path.join(REPO, "results", "*", "*")))


@pytest.fixture(autouse=True)
def writes_nothing_into_the_repository():
    """A test writes into its tmp_path, never into the recipes' default output folders,
    where its checkpoints and cached features would mix with the user's own runs."""
    before = _results_entries()
    yield
    new = sorted(os.path.relpath(p, REPO) for p in _results_entries() - before)
    assert not new, f"the test wrote into the repository: {new}; give it a tmp_path folder"


@pytest.fixture(scope="session")
def corpora(tmp_path_factory):
    """The tiny synthetic IEMOCAP, MUSAN and LibriSpeech (generated once per test session)."""
    from data_prep.synthetic import generate

    return generate(str(tmp_path_factory.mktemp("synthetic")), size="tiny", seed=0)


@pytest.fixture(scope="session")
def iemocap(corpora):
    return corpora["iemocap"]


def tree_hash(root):
    """sha256 over every file's relative path and bytes under ``root``."""
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            digest.update(os.path.relpath(path, root).encode())
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


# The character vocabulary of facebook/wav2vec2-base-960h and -large-960h-lv60-self.
RELEASED_CTC_VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|", "E", "T", "A", "O", "N", "I", "H",
                      "S", "R", "D", "L", "U", "M", "W", "C", "F", "G", "Y", "P", "B", "V", "K",
                      "'", "X", "J", "Q", "Z"]


@pytest.fixture(scope="session")
def tiny_wav2vec2(tmp_path_factory):
    """A randomly initialised, tiny HF wav2vec2 CTC model (with the released models'
    character vocabulary) saved as a local model folder."""
    import json

    from transformers import (Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor,
                              Wav2Vec2ForCTC)

    folder = str(tmp_path_factory.mktemp("tiny_wav2vec2"))
    config = Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        # 320-sample hop (20 ms frames) as the real models: attention stays small on
        # the corpus's 20-s turns (a 20-sample hop took 24 GB there).
        conv_dim=(32, 32, 32), conv_stride=(5, 8, 8), conv_kernel=(10, 8, 8),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
        vocab_size=len(RELEASED_CTC_VOCAB), pad_token_id=0,
    )
    Wav2Vec2ForCTC(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor().save_pretrained(folder)
    vocab = os.path.join(folder, "vocab.json")
    with open(vocab, "w") as f:
        json.dump({token: i for i, token in enumerate(RELEASED_CTC_VOCAB)}, f)
    Wav2Vec2CTCTokenizer(vocab, word_delimiter_token="|").save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A randomly initialised, tiny HF BERT with a character-level WordPiece tokenizer."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = str(tmp_path_factory.mktemp("tiny_bert"))
    vocab = os.path.join(folder, "vocab.txt")
    with open(vocab, "w") as f:
        f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "'"]
                          + [chr(c) for c in range(ord("a"), ord("z") + 1)]) + "\n")
    BertTokenizerFast(vocab_file=vocab, do_lower_case=True).save_pretrained(folder)
    config = BertConfig(vocab_size=32, hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=512)
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def pretrained_ctc(corpora, tmp_path_factory):
    """The CPU stand-in encoder + CTC head from a --debug run of pretrain_ctc.py."""
    out = tmp_path_factory.mktemp("pretrain_ctc")
    proc = run_recipe("recipes/joint_asr_ser/pretrain_ctc.py",
                      "recipes/joint_asr_ser/hparams/pretrain_ctc_crnn.yaml",
                      f"--data_folder={corpora['librispeech']}", f"--output_folder={out}",
                      "--debug", cwd=out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return str(out / "pretrained")


def run_recipe(script, hparams, *overrides, cwd=None, timeout=600):
    """Run a recipe script as a user would; returns the CompletedProcess (output captured)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cmd = [sys.executable, os.path.join(REPO, script), os.path.join(REPO, hparams), *overrides]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def load_recipe_script(recipe, script="train"):
    """Import ``recipes/<recipe>/<script>.py`` as a module (its folder on sys.path, as
    when the script runs), to call its Brain in a test."""
    import importlib.util

    folder = os.path.join(REPO, "recipes", recipe)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(f"{recipe}_{script}",
                                                  os.path.join(folder, f"{script}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_librispeech_vocab_size(librispeech):
    """Entries of the word model that pretrain_a2w.py trains on the tiny corpus's
    train-clean-100 transcripts: its distinct words + <unk>, <s>, </s>."""
    words = set()
    for path in glob.glob(f"{librispeech}/train-clean-100/*/*/*.trans.txt"):
        for line in open(path):
            words.update(line.split()[1:])
    return len(words) + 3


@pytest.fixture(scope="session")
def pretrained_a2w(corpora, tmp_path_factory):
    """``{"": paper size, "_cpu": CPU size}`` A2W models from --debug runs of
    pretrain_a2w.py on the tiny LibriSpeech, and their vocabulary size."""
    vocab_size = tiny_librispeech_vocab_size(corpora["librispeech"])
    folders = {}
    for suffix in ("", "_cpu"):
        out = tmp_path_factory.mktemp(f"pretrain_a2w{suffix}")
        proc = run_recipe("recipes/a2w_asr_ser/pretrain_a2w.py",
                          f"recipes/a2w_asr_ser/hparams/pretrain_a2w{suffix}.yaml",
                          f"--data_folder={corpora['librispeech']}", f"--output_folder={out}",
                          f"--vocab_size={vocab_size}", "--train_splits=[train-clean-100]",
                          "--debug", cwd=out)  # the synthetic corpus has no 360 / 500 h
        assert proc.returncode == 0, proc.stderr[-3000:]
        folders[suffix] = str(out / "pretrained")
    return {"folders": folders, "vocab_size": vocab_size}
