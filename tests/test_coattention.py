"""Co-attention fusion recipe (Li et al. 2022): equations (1)-(4), the hierarchy, layer
selection, module sizes, the loss weighting, no reference at evaluation, padding, the
released CTC head, the study and WER-analysis tables."""

import doctest
import glob
import importlib.util
import json
import math
import os
import sys
import types

import pytest
import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml

from conftest import REPO, RELEASED_CTC_VOCAB
from speechbrain_ext.ctc import character_encoder, load_released_ctc_head
from speechbrain_ext.nnet.coattention import (CoAttention, CoAttentionFusion,
                                              HierarchicalCoAttentionFusion, padding_mask)
from speechbrain_ext.nnet.hidden_layers import select_hidden_layer
from speechbrain_ext.nnet.logmel_crnn import LogMelCRNN

RECIPE = os.path.join(REPO, "recipes", "asr_fusion_coattention")
sys.path.insert(0, RECIPE)  # the scripts import their folder's modules, as when run


def _load_script(name):
    spec = importlib.util.spec_from_file_location(f"coatt_{name}", os.path.join(RECIPE, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TRAIN = _load_script("train")
STUDY = _load_script("study")
WER = _load_script("wer_analysis")
INTERFACE = _load_script("custom_interface")


def _hparams(name, tmp_path, **overrides):
    path = os.path.join(RECIPE, "hparams", name)
    text = open(path).read()
    base = {"data_folder": str(tmp_path), "output_folder": str(tmp_path / "out")}
    if "pretrained_ctc_folder:" in text:
        base["pretrained_ctc_folder"] = str(tmp_path / "unused")
    with open(path) as f:
        return load_hyperpyyaml(f, {**base, **overrides})


def _brain(name, tmp_path, **overrides):
    torch.manual_seed(0)
    hparams = _hparams(name, tmp_path, **overrides)
    brain = TRAIN.FusionASRSERBrain(modules=hparams["modules"], opt_class=hparams["opt_class"],
                                    hparams=hparams, run_opts={"device": "cpu"})
    brain.check_streams()
    brain.ctc_encoder = character_encoder()
    return brain


def _batch(signals, references):
    encoder = character_encoder()
    return sb.dataio.batch.PaddedBatch([
        {"id": f"u{i}", "sig": sig, "words": words, "emo": "neu", "speaker": "x",
         "tokens": torch.LongTensor(encoder.encode_sequence(list(words))),
         "emo_encoded": torch.LongTensor([i % 4])}
        for i, (sig, words) in enumerate(zip(signals, references))])


def _signals(n, seconds=1.0):
    return [0.1 * torch.randn(int(16000 * seconds * (1 + i)),
                              generator=torch.Generator().manual_seed(i)) for i in range(n)]


def _ready(brain):
    """One training forward (the global normalisations learn their statistics), then eval."""
    brain.modules.train()
    with torch.no_grad():
        brain.compute_forward(_batch(_signals(2), ["HELLO THERE", "GOOD DAY"]), sb.Stage.TRAIN)
    brain.modules.eval()


# -- equations (1)-(4) -------------------------------------------------------------------

def test_coattention_is_multihead_attention_with_queries_from_a_keys_values_from_b():
    """Equations (2)-(4) written out with the module's own weights, 16 heads of 64 / 16."""
    torch.manual_seed(0)
    coatt = CoAttention(embed_dim=64, num_heads=16).eval()
    a, b = torch.randn(1, 5, 64), torch.randn(1, 3, 64)
    h_a, h_b = coatt(a, b, padding_mask(torch.ones(1), 5), padding_mask(torch.ones(1), 3))

    def multihead(att, q, kv):
        w_q, w_k, w_v = att.in_proj_weight.chunk(3)
        b_q, b_k, b_v = att.in_proj_bias.chunk(3)
        heads = []
        for i in range(16):  # head_i = Attention(Q W^Q_i, K W^K_i, V W^V_i), d_k = 4
            rows = slice(4 * i, 4 * i + 4)
            qi = q @ w_q[rows].T + b_q[rows]
            ki = kv @ w_k[rows].T + b_k[rows]
            vi = kv @ w_v[rows].T + b_v[rows]
            heads.append(torch.softmax(qi @ ki.T / math.sqrt(4), dim=-1) @ vi)
        return torch.cat(heads, dim=-1) @ att.out_proj.weight.T + att.out_proj.bias  # W^O

    assert coatt.a_from_b.att.num_heads == 16
    assert torch.allclose(h_a[0], multihead(coatt.a_from_b.att, a[0], b[0]), atol=1e-5)
    assert torch.allclose(h_b[0], multihead(coatt.b_from_a.att, b[0], a[0]), atol=1e-5)


def test_coattention_with_one_key_returns_its_projected_value_for_every_query():
    """By hand: one key gets all the attention weight, so every query of A receives
    (b W^V + b_V) W^O + b_O, whatever A is."""
    torch.manual_seed(0)
    coatt = CoAttention(embed_dim=64, num_heads=16).eval()
    a, b = torch.randn(2, 4, 64), torch.randn(2, 3, 64)
    b_pad = padding_mask(torch.tensor([1 / 3, 1 / 3]), 3)  # only B's first frame is real
    h_a, _ = coatt(a, b, padding_mask(torch.ones(2), 4), b_pad)
    att = coatt.a_from_b.att
    value = b[:, 0] @ att.in_proj_weight.chunk(3)[2].T + att.in_proj_bias.chunk(3)[2]
    expected = value @ att.out_proj.weight.T + att.out_proj.bias
    assert torch.allclose(h_a, expected.unsqueeze(1).expand_as(h_a), atol=1e-5)


def test_coattention_fusion_concatenates_both_directions_and_is_not_symmetric():
    torch.manual_seed(0)
    fusion = CoAttentionFusion(embed_dim=64, num_heads=16, pairs=[[0, 1]]).eval()
    a, b = torch.randn(2, 6, 64), torch.randn(2, 6, 64)
    lens = [torch.ones(2), torch.ones(2)]
    ab, ba = fusion([a, b], lens), fusion([b, a], lens)
    assert ab.shape == (2, 128)  # H_C = Concat(H_C1, H_C2)
    assert not torch.allclose(ab, ba, atol=1e-3)  # queries from A differ from queries from B
    coatt = fusion.coattentions[0]
    h_a, h_b = coatt(a, b, padding_mask(lens[0], 6), padding_mask(lens[1], 6))
    assert torch.allclose(ab, torch.cat([h_a.mean(1), h_b.mean(1)], dim=-1), atol=1e-5)


def test_hierarchical_fusion_goes_mfcc_then_wav2vec2_then_bert(tmp_path):
    """Level 1 co-attends stream 0 (MFCC) with stream 1 (wav2vec2); level 2 the joined
    result (T0 + T1 steps) with stream 2 (BERT)."""
    fusion = HierarchicalCoAttentionFusion(embed_dim=64, num_heads=16, n_streams=3).eval()
    calls = []
    for level, module in enumerate(fusion.levels):
        module.register_forward_hook(
            lambda m, inputs, out, level=level: calls.append((level, inputs[0].shape[1],
                                                              inputs[1].shape[1])))
    streams = [torch.randn(2, t, 64) for t in (5, 7, 3)]
    fusion(streams, [torch.ones(2)] * 3)
    assert calls == [(0, 5, 7), (1, 12, 3)]
    # The proposed model's YAML reads the streams in that order.
    hparams = _hparams("full_hierarchical_crnn.yaml", tmp_path)
    assert hparams["streams"] == ["acoustic", "hidden", "text"]
    assert isinstance(hparams["fusion"], HierarchicalCoAttentionFusion)


def test_brain_feeds_the_fusion_the_streams_in_yaml_order(tmp_path):
    brain = _brain("full_hierarchical_crnn.yaml", tmp_path)
    _ready(brain)
    seen = {}
    for name in ("acoustic_stream", "hidden_stream", "text_stream"):
        brain.modules[name].register_forward_hook(
            lambda m, i, out, name=name: seen.__setitem__(name, out))
    brain.modules.fusion.register_forward_hook(
        lambda m, inputs, out: seen.__setitem__("fusion", inputs[0]))
    with torch.no_grad():
        brain.compute_forward(_batch(_signals(2), ["HELLO", "GOOD DAY"]), sb.Stage.TEST)
    order = [seen[n] for n in ("acoustic_stream", "hidden_stream", "text_stream")]
    assert len(seen["fusion"]) == 3
    assert all(x is y for x, y in zip(seen["fusion"], order))


# -- module sizes of section 4 -----------------------------------------------------------

def test_stream_encoders_are_the_papers_sizes(tmp_path):
    hparams = _hparams("full_hierarchical_crnn.yaml", tmp_path)
    # Dropout 0.5 follows the last BiLSTM layer too: half the attention's inputs are zero.
    enc, seen = hparams["hidden_stream"].train(), {}
    enc.self_attention.register_forward_pre_hook(lambda m, inputs: seen.__setitem__("h", inputs[0]))
    enc(torch.randn(4, 50, 320), torch.ones(4))
    assert 0.4 < (seen["h"] == 0).float().mean().item() < 0.6
    for name in ("acoustic_stream", "hidden_stream", "text_stream"):
        enc = hparams[name]
        lstm = enc.lstm.rnn
        assert (lstm.num_layers, lstm.hidden_size, lstm.bidirectional) == (2, 32, True)
        assert lstm.dropout == 0.5 and enc.dropout.p == 0.5  # after every layer
        att = enc.self_attention.att
        assert (att.num_heads, att.embed_dim) == (16, 64)
    fusion = hparams["fusion"]
    assert all(level.a_from_b.att.num_heads == 16 for level in fusion.levels)
    assert hparams["acoustic_features"].pool.kernel_size == 2
    assert hparams["asr_weight"] == 0.2 and hparams["batch_size"] == 20
    assert hparams["max_grad_norm"] == 5.0
    w2v2 = open(os.path.join(RECIPE, "hparams", "full_hierarchical_w2v2.yaml")).read()
    for line in ("number_of_epochs: 100", "lr: 0.0001", "weight_decay: 0.00001",
                 "wav2vec2_hub: facebook/wav2vec2-base-960h", "text_encoder_hub: bert-base-uncased"):
        assert line in w2v2


# -- layer selection ---------------------------------------------------------------------

def test_crnn_layers_are_the_stacked_model_run_layer_by_layer():
    torch.manual_seed(0)
    enc = LogMelCRNN(output_all_hiddens=True)
    wavs, lens = torch.randn(2, 16000), torch.tensor([1.0, 0.6])
    enc(wavs, lens)  # normalisation statistics
    enc.eval()
    hiddens = enc(wavs, lens)
    enc.output_all_hiddens = False
    final = enc(wavs, lens)
    assert len(hiddens) == 4 and hiddens[0].shape[-1] == 256
    assert torch.allclose(select_hidden_layer(hiddens, "final"), final, atol=1e-5)
    conv = enc.conv(enc.norm(enc.fbank(wavs[:1]), lens[:1]).transpose(1, 2)).transpose(1, 2)
    assert torch.allclose(select_hidden_layer(hiddens, "first")[:1], conv, atol=1e-5)
    # middle: the output of the second of three BiGRU layers, fed to the third gives the final
    middle = select_hidden_layer(hiddens, "middle")[:1]
    third = enc._gru_layer(2, middle, torch.tensor([middle.shape[1]]))
    assert torch.allclose(third, final[:1], atol=1e-5)


@pytest.mark.parametrize("layer,width", [("first", 256), ("middle", 320), ("final", 320)])
def test_brain_hidden_stream_reads_the_named_layer(tmp_path, layer, width):
    brain = _brain("hidden_only_crnn.yaml", tmp_path, hidden_layer=layer)
    _ready(brain)
    captured = {}
    brain.modules.hidden_stream.register_forward_hook(
        lambda m, inputs, out: captured.__setitem__("x", inputs[0]))
    hiddens = {}
    brain.modules.asr_encoder.register_forward_hook(
        lambda m, inputs, out: hiddens.__setitem__("all", out))
    with torch.no_grad():
        brain.compute_forward(_batch(_signals(2), ["HELLO", "GOOD DAY"]), sb.Stage.TEST)
    index = {"first": 0, "middle": 2, "final": 3}[layer]
    assert captured["x"].shape[-1] == width
    assert captured["x"] is hiddens["all"][index]


def test_wav2vec2_layers_first_middle_final(tiny_wav2vec2, tmp_path):
    """Through SpeechBrain's wrapper (as the _w2v2 YAMLs build it): first, middle and
    final are the HF model's hidden states 0, ceil(L/2) and L (L = 2 here; 6 of 12
    for wav2vec2-base)."""
    from speechbrain.integrations.huggingface.wav2vec2 import Wav2Vec2

    enc = Wav2Vec2(source=tiny_wav2vec2, save_path=str(tmp_path), output_all_hiddens=True,
                   output_norm=False).eval()
    wav = torch.randn(1, 16000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        states = enc(wav)
        reference = enc.model(wav, output_hidden_states=True)
    assert len(states) == 3  # embeddings + 2 layers
    for name, index in (("first", 0), ("middle", 1), ("final", 2)):
        assert torch.allclose(select_hidden_layer(states, name), reference.hidden_states[index],
                              atol=1e-5)
    assert torch.allclose(select_hidden_layer(states, "final"), reference.last_hidden_state,
                          atol=1e-5)
    assert [select_hidden_layer(list(range(13)), n) for n in ("first", "middle", "final")] == \
        [0, 6, 12]


W2V2_HIDDEN_YAMLS = sorted(os.path.basename(p) for p in glob.glob(
    os.path.join(REPO, "recipes", "asr_fusion_coattention", "hparams", "*_w2v2.yaml"))
    if "output_all_hiddens: True" in open(p).read())


def test_w2v2_yamls_read_every_hidden_layer_in_training_too(tiny_wav2vec2, tiny_bert, tmp_path):
    """LayerDrop would leave layers out of the hidden states in training (transformers
    5 captures them where layers run): each YAML's encoder returns L + 1 states, the
    same as in evaluation, even from a model whose config drops every layer."""
    import json
    import shutil

    from hyperpyyaml import load_hyperpyyaml

    dropping = tmp_path / "w2v2_layerdrop"
    shutil.copytree(tiny_wav2vec2, dropping)
    config = json.load(open(dropping / "config.json"))
    json.dump(dict(config, layerdrop=1.0), open(dropping / "config.json", "w"))
    assert len(W2V2_HIDDEN_YAMLS) == 9
    for name in W2V2_HIDDEN_YAMLS:
        path = os.path.join(REPO, "recipes", "asr_fusion_coattention", "hparams", name)
        text = open(path).read()
        overrides = {"data_folder": "unused", "output_folder": str(tmp_path / name),
                     "wav2vec2_hub": str(dropping), "encoder_dim": 32,
                     "text_encoder_hub": tiny_bert, "text_encoder_dim": 16}
        with open(path) as f:
            hparams = load_hyperpyyaml(f, {k: v for k, v in overrides.items()
                                           if f"\n{k}:" in text})
        encoder = hparams["asr_encoder"].train()
        assert len(encoder(torch.randn(1, 16000))) == 3, name  # embeddings + 2 layers


# -- loss, texts, padding ----------------------------------------------------------------

@pytest.mark.parametrize("asr_weight", [0.2, 0.5])
def test_loss_is_lambda_asr_plus_one_minus_lambda_ser(tmp_path, asr_weight):
    brain = _brain("full_hierarchical_crnn.yaml", tmp_path, asr_weight=asr_weight)
    _ready(brain)
    batch = _batch(_signals(2), ["HELLO THERE", "GOOD DAY"])
    with torch.no_grad():
        out = brain.compute_forward(batch, sb.Stage.TRAIN)
        loss = brain.compute_objectives(out, batch, sb.Stage.TRAIN)
    ser = sb.nnet.losses.nll_loss(out["emo"], batch.emo_encoded[0].squeeze(1))
    asr = sb.nnet.losses.ctc_loss(out["ctc"], batch.tokens[0], out["lens"], batch.tokens[1],
                                  blank_index=0)
    assert ser.item() != pytest.approx(asr.item(), rel=0.05)  # the weighting is observable
    assert loss.item() == pytest.approx(asr_weight * asr.item() + (1 - asr_weight) * ser.item(),
                                        rel=1e-5)


def test_rows_without_asr_train_on_the_ser_loss_alone(tmp_path):
    brain = _brain("gt_concat_crnn.yaml", tmp_path)
    _ready(brain)
    batch = _batch(_signals(2), ["HELLO THERE", "GOOD DAY"])
    with torch.no_grad():
        out = brain.compute_forward(batch, sb.Stage.TRAIN)
        loss = brain.compute_objectives(out, batch, sb.Stage.TRAIN)
    assert "ctc" not in out
    assert loss.item() == pytest.approx(
        sb.nnet.losses.nll_loss(out["emo"], batch.emo_encoded[0].squeeze(1)).item(), rel=1e-6)


class TextSpy(torch.nn.Module):
    """Records the texts given to the wrapped text encoder."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder, self.seen = encoder, []

    def forward(self, texts, return_tokens=True):
        self.seen.append(list(texts))
        return self.encoder(texts, return_tokens=return_tokens)


@pytest.mark.parametrize("name", ["full_hierarchical_crnn.yaml", "text_only_crnn.yaml"])
def test_evaluation_never_feeds_the_reference_to_the_ser_head(tmp_path, name):
    brain = _brain(name, tmp_path, text_in_training="reference")
    _ready(brain)
    brain.modules.text_encoder = TextSpy(brain.modules.text_encoder)
    spy = brain.modules.text_encoder
    signals = _signals(2)
    for stage in (sb.Stage.VALID, sb.Stage.TEST):
        spy.seen.clear()
        with torch.no_grad():
            out_a = brain.compute_forward(_batch(signals, ["I AM SO HAPPY", "THAT IS AWFUL"]), stage)
            out_b = brain.compute_forward(_batch(signals, ["OTHER WORDS", "ENTIRELY"]), stage)
        assert spy.seen == [out_a["hypotheses"], out_b["hypotheses"]]
        assert torch.allclose(out_a["emo"], out_b["emo"], atol=1e-5)  # the reference is unread
    # The same probe sees the reference in training when the YAML asks for it.
    spy.seen.clear()
    with torch.no_grad():
        brain.compute_forward(_batch(signals, ["I AM SO HAPPY", "THAT IS AWFUL"]), sb.Stage.TRAIN)
    assert spy.seen == [["I AM SO HAPPY", "THAT IS AWFUL"]]


def test_ground_truth_text_is_refused_beside_an_asr_path(tmp_path):
    with pytest.raises(ValueError, match="reference is for models without ASR"):
        _brain("full_hierarchical_crnn.yaml", tmp_path, text_source="reference")
    with pytest.raises(ValueError, match="need an asr_encoder"):
        # text from the ASR, but no ASR in this YAML
        _brain("gt_concat_crnn.yaml", tmp_path, text_source="asr")


@pytest.mark.parametrize("name", ["full_hierarchical_crnn.yaml", "full_coattention_crnn.yaml",
                                  "gt_concat_crnn.yaml"])
def test_padding_does_not_change_a_prediction(tmp_path, name):
    """An utterance alone, or padded beside a 3x longer one (more frames, more tokens)."""
    brain = _brain(name, tmp_path)
    _ready(brain)
    signals = [0.1 * torch.randn(16000, generator=torch.Generator().manual_seed(k))
               for k in range(2)]
    signals[1] = signals[1].repeat(3)
    with torch.no_grad():
        alone = brain.compute_forward(_batch(signals[:1], ["HELLO"]), sb.Stage.TEST)
        together = brain.compute_forward(_batch(signals, ["HELLO", "A MUCH LONGER ONE HERE"]),
                                         sb.Stage.TEST)
    assert torch.allclose(alone["emo"][0], together["emo"][0], atol=1e-4)


@pytest.mark.parametrize("name", ["full_coattention_crnn.yaml", "hidden_concat_crnn.yaml"])
def test_ctc_and_hidden_stream_read_the_encoders_own_frames(tmp_path, name):
    """Beside a turn of 24000 samples (51 stand-in frames), one of 16240 has 34 frames,
    its relative wave length times 51, rounded, 35 (a padded frame): the CTC loss, the
    decoding and the hidden stream get lengths that count 34, in the Brain and in the
    exported model's forward (``custom_interface.fused_emotion``), whose prediction
    is then the turn's alone."""
    brain = _brain(name, tmp_path)
    _ready(brain)
    decoded = []
    decoder = brain.hparams.ctc_decoder

    def recording_decoder(log_probs, lens, *args):
        decoded.append(torch.round(lens * log_probs.shape[1]).long().tolist())
        return decoder(log_probs, lens, *args)

    brain.hparams.ctc_decoder = recording_decoder
    signals = [0.1 * torch.randn(n, generator=torch.Generator().manual_seed(n))
               for n in (16240, 24000)]
    with torch.no_grad():
        out = brain.compute_forward(_batch(signals, ["HELLO", "GOOD DAY"]), sb.Stage.TEST)
    assert torch.round(out["lens"] * out["ctc"].shape[1]).long().tolist() == [34, 51]
    assert decoded == [[34, 51]]
    model = types.SimpleNamespace(mods=brain.modules, hparams=types.SimpleNamespace(
        **vars(brain.hparams), token_encoder=character_encoder()))
    wavs, lens = _batch(signals, ["HELLO", "GOOD DAY"]).sig
    with torch.no_grad():
        alone, _ = INTERFACE.fused_emotion(model, wavs[:1, :16240], torch.ones(1))
        together, _ = INTERFACE.fused_emotion(model, wavs, lens)
    assert decoded[-1] == [34, 51]
    assert torch.allclose(alone[0], together[0], atol=1e-4)


# -- the released CTC head ---------------------------------------------------------------

def test_released_ctc_head_rows_follow_the_character_names(tiny_wav2vec2):
    from transformers import Wav2Vec2ForCTC

    lin = sb.nnet.linear.Linear(input_size=32, n_neurons=29)
    load_released_ctc_head(lin, tiny_wav2vec2)
    released = Wav2Vec2ForCTC.from_pretrained(tiny_wav2vec2).lm_head
    encoder = character_encoder()
    for ours, theirs in (("<blank>", "<pad>"), (" ", "|"), ("'", "'"), ("E", "E"), ("Z", "Z")):
        row = RELEASED_CTC_VOCAB.index(theirs)
        assert torch.equal(lin.w.weight[encoder.lab2ind[ours]], released.weight[row])
        assert torch.equal(lin.w.bias[encoder.lab2ind[ours]], released.bias[row])


# -- study and WER analysis --------------------------------------------------------------

def test_every_study_row_has_its_yaml_in_both_sizes():
    for row, (table, _, name, overrides, paper) in STUDY.ROWS.items():
        for size in ("crnn", "w2v2"):
            text = open(os.path.join(RECIPE, "hparams", f"{name}_{size}.yaml")).read()
            assert ("asr_encoder:" in text) == STUDY.uses_asr(row)
    assert sum(t == 3 for t, *_ in STUDY.ROWS.values()) == 9
    assert sum(t == 4 for t, *_ in STUDY.ROWS.values()) == 6


def _summary(wa_by_fold):
    return {"scheme": "session5", "folds": [int(k) for k in wa_by_fold],
            "conditions": {"clean": {"per_fold": {k: {"WA": v} for k, v in wa_by_fold.items()},
                                     "pooled": {"WA": sum(wa_by_fold.values()) / len(wa_by_fold),
                                                "UA": 50.0}}}}


def test_study_tables_put_ours_beside_the_paper(tmp_path):
    for row, folds in (("full_hierarchical", {"1": 70.0, "2": 60.0}),
                       ("acoustic", {"1": 65.0, "2": 62.0})):
        os.makedirs(tmp_path / row)
        json.dump(_summary(folds), open(tmp_path / row / "summary.json", "w"))
    text = STUDY.write_tables(str(tmp_path))
    assert "| ASR-SER | Acoustic + Hidden (middle) + Text output | Hierarchical co-attention | " \
           "63.4 | 65.0 | 50.0 | - | 1,2 |" in text
    assert "| SER (baseline) | Acoustic |  | 51.4 | 63.5 |" in text
    # 70 - 65 = +5.0 on fold 1, 60 - 62 = -2.0 on fold 2; the paper: 63.4 - 51.4 = +12.0
    assert "| acoustic | +12.0 | 1,2 | +5.0, -2.0 | +1.5 | 1 of 2 folds |" in text
    assert (tmp_path / "table3.md").exists() and (tmp_path / "comparison.md").exists()


def test_wer_tables_from_trained_folds(tmp_path):
    rows = [{"id": "a", "emo": "ang", "emo_pred": "ang", "words": "ONE TWO", "words_pred": "ONE"},
            {"id": "b", "emo": "hap", "emo_pred": "ang", "words": " ".join(["W"] * 12),
             "words_pred": " ".join(["W"] * 12)},
            {"id": "c", "emo": "hap", "emo_pred": "hap", "words": "X", "words_pred": "X Y",
             "condition": "noise_5"},  # other conditions are not analysed
            {"id": "d", "emo": "hap", "emo_pred": "hap", "words": " ".join(["V"] * 10),
             "words_pred": " ".join(["V"] * 10)}]  # 10 words: not short, in <=10
    os.makedirs(tmp_path / "fold1")
    json.dump(rows, open(tmp_path / "fold1" / "predictions.json", "w"))
    assert WER.main(["--predictions", str(tmp_path)]) == 0
    text = (tmp_path / "wer_tables.md").read_text()
    # ang: 1 deletion in 2 words; hap: 0 in 22; overall 1 in 24
    assert "| WER % | 22.8 / 50.0 | 38.9 / 0.0 | 32.7 / 4.2 |" in text
    assert "| turns | 1103 / 1 | 1615 / 2 | 5500 / 3 |" in text
    assert "| short % | 44.8 / 100.0 | 55.7 / 0.0 | - / 33.3 |" in text  # short: < 10 words
    assert "| <=10 | 26.5 / 50.0 | 54.8 / 0.0 | 46.4 / 8.3 |" in text  # 1 edit in 2 + 10 words
    assert "| 11-20 | 21.8 / - | 37.5 / 0.0 | 32.2 / 0.0 |" in text


def test_recipe_module_examples_run():
    # The recipe folder is not a package pytest collects: run its examples here.
    result = doctest.testmod(WER)
    assert result.attempted > 0 and result.failed == 0
