"""E-transformer recipe: modules built from the paper's numbers, residual paths, pooling, cache."""

import os

import numpy as np
import pytest
import soundfile as sf
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.nnet.pooling import StatisticsPooling

from conftest import REPO
from speechbrain_ext.feature_cache import FeatureCache
from speechbrain_ext.features import FixedLengthLogMel
from speechbrain_ext.nnet.etransformer import (ETransformer, ResidualBLSTM, ThreeConvLayers,
                                               TimePooling, TransformerBlock)

HPARAMS = os.path.join(REPO, "recipes/e_transformer/hparams")


def _zero(*modules):
    with torch.no_grad():
        for m in modules:
            for p in m.parameters():
                p.zero_()


def test_three_conv_layers_follow_the_paper_and_skip_the_last_block():
    module = ThreeConvLayers(40).eval()
    convs = [b.conv for b in module.blocks]
    assert [c.kernel_size[0] for c in convs] == [5, 3, 3]
    assert all(c.stride == (1,) and c.out_channels == 128 for c in convs)
    x = torch.randn(2, 50, 40)
    before_last = module.blocks[1](module.blocks[0](x))
    _zero(module.blocks[2])  # the last block now outputs relu(BN(0)) = 0
    assert torch.allclose(module(x), before_last)


def test_residual_blstm_follows_equations_1_to_3():
    module = ResidualBLSTM(128).eval()
    assert module.blstm.rnn.hidden_size == 128 and module.blstm.rnn.bidirectional
    assert module.dropout.p == 0.2
    dense = [m for m in module.ffn if isinstance(m, torch.nn.Linear)]
    assert [(d.in_features, d.out_features) for d in dense] == [(256, 512), (512, 128)]
    x = torch.randn(2, 20, 128)
    _zero(dense[1])  # FFN(.) = 0 leaves the skip: H = X
    assert torch.allclose(module(x), x)
    plain = ResidualBLSTM(128, residual=False).eval()
    _zero(plain.ffn[2])
    assert torch.all(plain(x) == 0)  # no skip in the ablations' plain BLSTM


def test_time_pooling_halves_the_frames():
    pool = TimePooling().eval()
    assert pool(torch.randn(2, 400, 128)).shape == (2, 200, 128)
    x = torch.tensor([[[1.0], [3.0], [2.0], [0.0]]])
    assert pool(x).flatten().tolist() == [3.0, 2.0]  # max over kernel 2, stride 2
    assert pool.dropout.p == 0.2


def test_e_transformer_follows_equations_5_to_8():
    module = ETransformer().eval()
    assert module.conv_in.conv.kernel_size == (3,) and module.conv_in.conv.out_channels == 128
    layer = module.transformer.encoder.layers[0]
    assert layer.self_att.att.num_heads == 8 and layer.self_att.att.embed_dim == 128
    t = torch.randn(2, 30, 128)
    _zero(module.conv_out)  # Conv1d(T'') = LayerNorm(relu(0)) with zero affine = 0
    assert torch.allclose(module(t), t)  # Y = Conv1d(T'') + T leaves T
    assert not torch.allclose(TransformerBlock().eval()(t), t)


def test_statistics_pooling_ignores_padding():
    x = torch.randn(1, 37, 128)
    padded = torch.zeros(2, 50, 128)
    padded[0, :37], padded[1, :37] = x[0], x[0]
    padded[1, 37:] = 99.0  # different padding, same utterance
    lens = torch.tensor([37 / 50, 37 / 50])
    pooled = StatisticsPooling()(padded, lens)
    # SpeechBrain adds a tiny noise (1e-5 to 9e-5) to the statistics; padding 99 would
    # move them by about 15 (mean) and 40 (std).
    assert torch.allclose(pooled[0], pooled[1], atol=2e-4)
    assert torch.allclose(pooled[0, 0, :128], x[0].mean(0), atol=2e-4)
    assert torch.allclose(pooled[0, 0, 128:], x[0].std(0), atol=2e-4)


def test_feature_cache_is_keyed_by_settings_and_by_the_wav(tmp_path):
    wav = tmp_path / "a.wav"
    sf.write(wav, 0.1 * np.random.default_rng(0).normal(size=16000).astype(np.float32), 16000)
    cache = FeatureCache(str(tmp_path / "cache"), FixedLengthLogMel(deltas=False))
    first = cache(str(wav))
    assert torch.equal(cache(str(wav)), first) and (cache.hits, cache.misses) == (1, 1)
    other = FeatureCache(str(tmp_path / "cache"), FixedLengthLogMel(deltas=True))
    assert other.folder != cache.folder and other(str(wav)).shape == (101, 120)
    sf.write(wav, 0.1 * np.random.default_rng(1).normal(size=8000).astype(np.float32), 16000)
    os.utime(wav, ns=(1, 1))  # an edited file: new size and time, never served stale
    assert cache(str(wav)).shape == (51, 40) and cache.misses == 2


EXPECTED_ENCODERS = {
    "e_transformer": ["ThreeConvLayers", "ResidualBLSTM", "ResidualBLSTM", "TimePooling",
                      "ETransformer", "ETransformer", "ETransformer"],
    "base1": ["ThreeConvLayers", "BLSTM", "BLSTM", "TimePooling",
              "ETransformer", "ETransformer", "ETransformer"],
    "base2": ["ThreeConvLayers", "ResidualBLSTM", "ResidualBLSTM", "TimePooling",
              "TransformerBlock", "TransformerBlock", "TransformerBlock"],
    "base3": ["ThreeConvLayers", "BLSTM", "BLSTM", "TimePooling",
              "TransformerBlock", "TransformerBlock", "TransformerBlock"],
    "base4": ["ThreeConvLayers", "ResidualBLSTM", "ResidualBLSTM",
              "ETransformer", "ETransformer", "ETransformer"],
    "base5": ["ThreeConvLayers", "ResidualBLSTM", "ResidualBLSTM"],
    "base6": ["ThreeConvLayers", "BLSTM", "BLSTM"],
    "base7": ["BLSTM", "BLSTM"],
}


def _load(name, tmp_path):
    with open(os.path.join(HPARAMS, f"{name}.yaml")) as f:
        return load_hyperpyyaml(f, {"data_folder": "unused",
                                    "feature_cache_folder": str(tmp_path)})


@pytest.mark.parametrize("name", sorted(EXPECTED_ENCODERS))
def test_the_eight_systems_differ_by_their_encoder_only(name, tmp_path):
    hparams = _load(name, tmp_path)
    kinds = [("BLSTM" if type(m).__name__ == "ResidualBLSTM" and not m.residual
              else type(m).__name__) for m in hparams["encoder"]][1:]  # after FlattenChannels
    assert kinds == EXPECTED_ENCODERS[name]
    reference = _load("e_transformer", tmp_path)
    for key in ("lr", "batch_size", "max_frames", "n_mels", "merge", "emotions", "d_model"):
        assert hparams[key] == reference[key]
    assert (hparams["lr"], hparams["batch_size"], hparams["max_frames"]) == (1e-4, 32, 400)
    x = torch.randn(2, 400, 40, 1)
    assert hparams["encoder"].eval()(x).shape[-1] == 128
