"""CoRNN recipe: 3-D log-mel, the Conformer block's equations, ACRNN sizes (the Brain on
real batches: test_recipe_brains.py)."""

import os

import pytest
import torch
from hyperpyyaml import load_hyperpyyaml

from conftest import REPO
from speechbrain_ext.features import FixedLengthLogMel
from speechbrain_ext.nnet.acrnn import ACRNNConvFrontEnd, AttentivePooling
from speechbrain_ext.nnet.cornn import ConformerStack

YAMLS = ["cornn", "wo_conformer", "wo_bilstm", "acrnn"]


def test_3d_log_mel_has_3_channels_of_40_bins_and_300_frames():
    features = FixedLengthLogMel(n_mels=40, max_frames=300, deltas=True, normalization=None)
    long_and_short = torch.randn(2, 16000 * 4)
    feats, lens = features(long_and_short, torch.tensor([1.0, 0.25]))
    assert feats.shape == (2, 300, 40, 3)
    assert lens.tolist() == [1.0, pytest.approx(101 / 300)]  # 4 s cut to 3 s; 1 s = 101 frames
    assert torch.all(feats[1, 101:] == 0) and torch.any(feats[1, :101] != 0)  # zero padding
    # Channels 2 and 3 are the delta and delta-delta of channel 1.
    delta = features.deltas(feats[:1, :, :, 0])
    assert torch.allclose(feats[0, 2:-2, :, 1], delta[0, 2:-2], atol=1e-5)


def _zero_attention_and_convolution(layer):
    """With MHSA and Conv silenced, a block is h = LayerNorm(h~ + 1/2 FFN(h~)), h~ = x + 1/2 FFN(x)."""
    with torch.no_grad():
        for linear in (layer.mha_layer.out_proj, layer.convolution_module.after_conv[2]):
            linear.weight.zero_()
            linear.bias.zero_()


def test_conformer_block_uses_half_step_feed_forward_modules():
    torch.manual_seed(0)
    stack = ConformerStack(64, d_model=64, num_layers=1, nhead=4, d_ffn=128, kernel_size=3)
    stack.eval()
    layer = stack.encoder.layers[0]
    _zero_attention_and_convolution(layer)
    x = torch.randn(2, 10, 64)
    out, _ = layer(x, pos_embs=stack.pos_enc(x))

    def block(factor):
        h = x + factor * layer.ffn_module1(x)                 # (1); (2), (3) are zero here
        return layer.norm2(h + factor * layer.ffn_module2(h))  # (4)

    assert torch.allclose(out, block(0.5), atol=1e-5)
    assert not torch.allclose(out, block(1.0), atol=1e-3)  # a full step would be caught


def test_conformer_block_has_attention_and_convolution_residuals():
    torch.manual_seed(0)
    stack = ConformerStack(64, d_model=64, num_layers=1, nhead=4, d_ffn=128, kernel_size=3)
    stack.eval()
    layer = stack.encoder.layers[0]
    conv = layer.convolution_module
    assert isinstance(conv.after_conv[0], torch.nn.Module) and "BatchNorm" in type(
        conv.after_conv[0]).__name__  # pointwise, depthwise, BatchNorm as in the paper
    assert conv.conv.groups == 64  # depthwise
    x = torch.randn(2, 10, 64)
    full, _ = layer(x, pos_embs=stack.pos_enc(x))
    _zero_attention_and_convolution(layer)
    silenced, _ = layer(x, pos_embs=stack.pos_enc(x))
    assert not torch.allclose(full, silenced, atol=1e-3)  # (2) and (3) add to the stream


def test_acrnn_sizes_follow_chen_et_al():
    front = ACRNNConvFrontEnd()
    convs = [m for m in front.cnn if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [128, 256, 256, 256, 256, 256]
    assert all(c.kernel_size == (5, 3) for c in convs)
    assert front.linear.in_features == 256 * 10 and front.linear.out_features == 768
    assert front(torch.randn(1, 300, 40, 3)).shape == (1, 150, 768)


def test_attentive_pooling_ignores_padding():
    pool = AttentivePooling(8)
    x = torch.randn(1, 5, 8)
    padded = torch.cat([x, 100 * torch.randn(1, 3, 8)], dim=1)
    assert torch.allclose(pool(x, torch.ones(1)), pool(padded, torch.tensor([5 / 8])),
                          atol=1e-6)


def test_cornn_sizes_and_ablations_differ_only_by_yaml(tmp_path):
    sizes = {}
    for name in YAMLS:
        with open(os.path.join(REPO, "recipes/cornn/hparams", f"{name}.yaml")) as f:
            # The checkpointer and the feature cache create their folders: not in the repository
            hparams = load_hyperpyyaml(f, {"data_folder": "unused",
                                           "output_folder": str(tmp_path),
                                           "feature_cache_folder": str(tmp_path / "cache")})
        kinds = [type(m).__name__ for m in hparams["encoder"]]
        sizes[name] = kinds
        assert hparams["improvised_only"] and hparams["merge"] == {}
        assert (hparams["lr"], hparams["batch_size"], hparams["dropout"]) == (0.001, 40, 0.2)
        assert hparams["number_of_epochs"] == 250 and hparams["max_frames"] == 300
    assert sizes["cornn"] == ["FlattenChannels", "BiLSTM", "ConformerStack"]
    assert sizes["wo_conformer"] == ["FlattenChannels", "BiLSTM"]
    assert sizes["wo_bilstm"] == ["FlattenChannels", "ConformerStack"]
    assert sizes["acrnn"] == ["ACRNNConvFrontEnd", "BiLSTM"]
