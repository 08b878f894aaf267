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
                                               TimePooling)

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


def _record(module, calls):
    """Forward hook: appends (input, output) of each call of ``module`` to ``calls``."""
    return module.register_forward_hook(lambda m, args, out: calls.append((args[0], out)))


def test_e_transformer_follows_equations_5_to_8():
    module = ETransformer().eval()
    assert module.conv_in.conv.kernel_size == (3,) and module.conv_in.conv.out_channels == 128
    layer = module.transformer.encoder.layers[0]
    assert layer.self_att.att.num_heads == 8 and layer.self_att.att.embed_dim == 128
    t = torch.randn(2, 30, 128)
    calls = {name: [] for name in ("conv_in", "transformer", "conv_out")}
    for name, calls_of in calls.items():
        _record(getattr(module, name), calls_of)
    y = module(t)
    assert all(len(c) == 1 for c in calls.values()), "every step runs once"
    (conv_in_x, conv_in_y), = calls["conv_in"]
    (transformer_x, transformer_y), = calls["transformer"]
    (conv_out_x, conv_out_y), = calls["conv_out"]
    assert torch.equal(conv_in_x, t)                      # T'  = Conv1d(T)         (5)
    assert torch.equal(transformer_x, conv_in_y)          # T'' = Transformer(T')   (6)
    assert torch.equal(conv_out_x, transformer_y)         # Conv1d(T'')             (7)
    assert torch.allclose(y, conv_out_y + t)              # Y = Conv1d(T'') + T     (8)
    # The transformer layer changes its input (it is not an identity in disguise).
    assert not torch.allclose(transformer_y, transformer_x, atol=1e-3)


def test_e_transformer_conv1d_is_relu_then_layernorm():
    conv = ETransformer().eval().conv_in
    out = conv(torch.randn(2, 30, 128))
    # LayerNorm last (unit affine at init): every frame has mean 0 and std 1, and
    # negative values; a LayerNorm before the ReLU would leave only values >= 0.
    assert torch.allclose(out.mean(-1), torch.zeros(2, 30), atol=1e-5)
    assert torch.allclose(out.std(-1, unbiased=False), torch.ones(2, 30), atol=1e-3)
    assert (out < 0).any()


def test_time_pooling_drops_out_before_pooling():
    pool = TimePooling()
    calls = []
    _record(pool.dropout, calls)
    pool(torch.randn(2, 400, 128))
    assert calls[0][0].shape == (2, 400, 128)  # dropout sees the 400 frames, not 200


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
        return load_hyperpyyaml(f, {"data_folder": "unused", "output_folder": str(tmp_path),
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


def _n_parameters(module):
    return sum(p.numel() for p in module.parameters())


def test_residual_blstm_parameter_count_from_the_papers_sizes():
    # BLSTM 128 -> 2 x 128: 2 directions x 4 gates x (128 x 128 + 128 x 128 + 2 x 128)
    # = 264,192; FFN 256 -> 512 -> 128: 131,584 + 65,664 = 197,248.
    assert _n_parameters(ResidualBLSTM(128)) == 264_192 + 197_248


def test_time_pooling_halves_the_frames_not_the_parameters(tmp_path):
    """The paper says time pooling "reduces the parameters by two in E-transformer module".
    Pooling has no parameters: with or without it (Base4) the model is the same size;
    what halves is the number of frames the E-transformer modules process."""
    with_pooling = _load("e_transformer", tmp_path)["encoder"].eval()
    without = _load("base4", tmp_path)["encoder"].eval()
    assert _n_parameters(with_pooling) == _n_parameters(without)
    frames = {}
    for name, encoder in (("pooled", with_pooling), ("base4", without)):
        first = next(m for m in encoder if isinstance(m, ETransformer))
        first.register_forward_hook(lambda m, args, out, name=name: frames.update({name: args[0].shape[1]}))
        encoder(torch.randn(1, 400, 40, 1))
    assert frames == {"pooled": 200, "base4": 400}
