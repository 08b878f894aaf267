"""A2W ASR-SER recipe (Feng et al. 2020): module sizes, the structured self-attention
(equations 3-5), the decoder states handed to SER, no reference at evaluation, the
0.2 / 0.8 loss, beam vs greedy, the word vocabulary."""

import json
import math
import os

import pytest
import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml

from conftest import REPO, load_recipe_script
from speechbrain_ext.ctc import character_encoder
from speechbrain_ext.nnet.a2w import bos_sequences
from speechbrain_ext.nnet.structured_attention import StructuredSelfAttention
from speechbrain_ext.words import WordVocabulary

RECIPE = os.path.join(REPO, "recipes", "a2w_asr_ser")
TRAIN = load_recipe_script("a2w_asr_ser")
CHARACTERS = character_encoder()  # the pre-training's auxiliary CTC targets
SENTENCES = ["I AM SO HAPPY", "THE CAR IS READY", "I MISS YOU", "GET OUT OF MY HOUSE"]


def _hparams(name, tmp_path, **overrides):
    path = os.path.join(RECIPE, "hparams", name)
    base = {"data_folder": str(tmp_path), "output_folder": str(tmp_path / "out")}
    if "pretrained_a2w_folder:" in open(path).read():
        base["pretrained_a2w_folder"] = str(tmp_path / "unused")
    with open(path) as f:
        return load_hyperpyyaml(f, {**base, **overrides})


def _lstm_params(input_size, hidden, layers, directions=2):
    """torch.nn.LSTM's parameter count (weights and both biases of each gate)."""
    total, size = 0, input_size
    for _ in range(layers):
        total += directions * 4 * hidden * (size + hidden + 2)
        size = directions * hidden
    return total


def test_paper_sizes_of_the_asr_ser_yaml(tmp_path):
    """Section 5.3: 5 x BiLSTM 320 encoder on 120-dim stacked features, location attention,
    1-layer LSTM 320 decoder, 2 x BiLSTM 256 per SER stream, 8 heads x 512 nodes,
    FC 2048, beam 4, lambda 0.2."""
    hp = _hparams("asr_ser.yaml", tmp_path)
    encoder = hp["asr_encoder"].lstm.rnn
    assert (encoder.num_layers, encoder.hidden_size, encoder.bidirectional) == (5, 320, True)
    assert encoder.input_size == 120 * hp["frame_stack"]
    assert sum(p.numel() for p in encoder.parameters()) == _lstm_params(120 * 4, 320, 5)
    decoder = hp["attentional_decoder"]
    assert (decoder.rnn_type, decoder.attn_type, decoder.num_layers) == ("lstm", "location", 1)
    assert decoder.hidden_size == 320
    for stream in ("acoustic_stream", "asr_states_stream"):
        lstm = hp[stream].lstm.rnn
        assert (lstm.num_layers, lstm.hidden_size, lstm.bidirectional) == (2, 256, True)
        assert lstm.dropout == 0.2 and hp[stream].dropout.p == 0.2
        attention = hp[stream].attention
        assert (attention.heads, attention.W1.out_features) == (8, 512)
        assert hp[stream].output_size == 8 * 512
    assert hp["asr_states_stream"].lstm.rnn.input_size == 320  # the decoder states
    assert hp["acoustic_stream"].lstm.rnn.input_size == 40
    assert hp["ser_features"].max_frames == 750  # 7.5 s
    fc, relu, out = hp["emotion_classifier"]
    assert (fc.in_features, fc.out_features, out.out_features) == (2 * 4096, 2048, 4)
    assert isinstance(relu, torch.nn.ReLU)
    assert hp["test_search"].beam_size == 4
    assert hp["asr_weight"] == 0.2
    assert (hp["lr"], hp["weight_decay"], hp["max_grad_norm"], hp["batch_size"]) == (
        1e-4, 1e-5, 1.0, 20)
    assert hp["number_of_epochs"] == 60 and hp["max_duration"] == 20.0


def test_text_rows_embed_words_in_300_dimensions(tmp_path):
    for name in ("text.yaml", "combined_asr.yaml"):
        hp = _hparams(name, tmp_path)
        assert hp["word_embedding"].embedding_dim == 300
        assert hp["text_stream"].lstm.rnn.input_size == 300


def test_structured_self_attention_follows_equations_3_to_5():
    """a_i = softmax(w2_i tanh(W1 H^T)), head_i = a_i H, M = Concat(heads), by hand."""
    att = StructuredSelfAttention(input_size=2, attention_size=2, heads=2)
    with torch.no_grad():
        att.W1.weight.copy_(torch.eye(2))
        att.w2.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, -2.0]]))
    H = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]]])
    pooled = att(H, torch.ones(1))
    expected = []
    for w2 in ([1.0, 0.0], [0.0, -2.0]):
        scores = [w2[0] * math.tanh(h[0]) + w2[1] * math.tanh(h[1]) for h in H[0].tolist()]
        norm = sum(math.exp(s) for s in scores)
        a = [math.exp(s) / norm for s in scores]
        expected += [sum(a[t] * H[0, t, d].item() for t in range(3)) for d in range(2)]
    assert torch.allclose(pooled[0], torch.tensor(expected), atol=1e-6)


def test_structured_self_attention_ignores_padding():
    torch.manual_seed(0)
    att = StructuredSelfAttention(input_size=4, attention_size=6, heads=3)
    H = torch.randn(2, 5, 4)
    lens = torch.tensor([1.0, 0.6])  # the second sequence: 3 steps
    pooled, weights = att(H, lens, return_weights=True)
    assert weights[1, :, 3:].abs().sum() == 0
    assert torch.allclose(weights.sum(-1), torch.ones(2, 3))
    H2 = H.clone()
    H2[1, 3:] = 100.0  # whatever the padding holds
    assert torch.allclose(att(H2, lens)[1], pooled[1])
    alone = att(H[1:, :3], torch.ones(1))  # the same sequence without padding
    assert torch.allclose(alone[0], pooled[1], atol=1e-6)


def _vocab(tmp_path):
    return WordVocabulary.train(SENTENCES, str(tmp_path / "words"), vocab_size=100)


def _brain(name, tmp_path, **overrides):
    torch.manual_seed(0)
    vocab = _vocab(tmp_path)
    small = {"vocab_size": len(vocab), "lstm_size": 8}
    if "encoder_layers:" in open(os.path.join(RECIPE, "hparams", name)).read():
        small.update(encoder_layers=2, encoder_size=16)
    overrides = {**small, **overrides}
    hp = _hparams(name, tmp_path, **overrides)
    brain = TRAIN.A2WSERBrain(modules=hp["modules"], opt_class=hp["opt_class"], hparams=hp,
                              run_opts={"device": "cpu"})
    brain.check_streams()
    brain.vocab = vocab
    return brain


def _batch(vocab, references):
    items = []
    for i, words in enumerate(references):
        ids = vocab.encode(words)
        tokens_bos = torch.LongTensor([vocab.bos_index] + ids)
        tokens_eos = torch.LongTensor(ids + [vocab.eos_index])
        items.append({"id": f"u{i}", "speaker": "x", "emo": "neu", "words": words,
                      "tokens": torch.LongTensor(CHARACTERS.encode_sequence(list(words))),
                      "sig": 0.1 * torch.randn(16000 + 4000 * i,
                                               generator=torch.Generator().manual_seed(i)),
                      "tokens_bos": tokens_bos, "tokens_eos": tokens_eos,
                      "emo_encoded": torch.LongTensor([i % 4])})
    return sb.dataio.batch.PaddedBatch(items)


def _ready(brain):
    """One training forward (the normalisations learn their statistics), then eval."""
    brain.modules.train()
    batch = _batch(brain.vocab, SENTENCES[:2])
    with torch.no_grad():
        brain.compute_forward(batch, sb.Stage.TRAIN)
        if "asr_features" in brain.modules:  # a frozen (pre-trained) ASR's own statistics
            brain.modules.asr_features(*batch.sig)
    brain.modules.eval()


def test_decoder_states_are_the_lstm_states_not_the_projected_outputs(tmp_path):
    """The SER head reads s_l, the decoder LSTM's output, not its projection (``proj``)."""
    brain = _brain("asr_ser_cpu.yaml", tmp_path)
    decoder = brain.hparams.asr_decoder
    seen = {"rnn": [], "proj": []}
    hooks = [decoder.attentional_decoder.rnn.register_forward_hook(
                 lambda m, i, o: seen["rnn"].append(o[0])),
             decoder.attentional_decoder.proj.register_forward_hook(
                 lambda m, i, o: seen["proj"].append(o))]
    tokens, _ = bos_sequences([[4, 5, 6], [7]], brain.vocab.bos_index)
    with torch.no_grad():
        _, states = decoder(tokens, torch.randn(2, 9, 32), torch.tensor([1.0, 0.7]))
    for hook in hooks:
        hook.remove()
    assert states.shape == (2, 4, 320)
    assert torch.equal(states, torch.stack(seen["rnn"], dim=1))
    assert not torch.allclose(states, torch.stack(seen["proj"], dim=1))


def test_ser_never_reads_the_reference_at_evaluation(tmp_path):
    """ASR-SER: valid / test predictions do not change with the reference words; training's
    (teacher-forced) ones do, so the comparison can fail."""
    brain = _brain("asr_ser_cpu.yaml", tmp_path)
    _ready(brain)
    right, wrong = _batch(brain.vocab, SENTENCES[:2]), _batch(brain.vocab, SENTENCES[2:])
    with torch.no_grad():
        for stage in (sb.Stage.VALID, sb.Stage.TEST):
            a, b = brain.compute_forward(right, stage), brain.compute_forward(wrong, stage)
            assert torch.equal(a["emo"], b["emo"]), stage
            assert a["hypotheses"] == b["hypotheses"]
        a, b = (brain.compute_forward(right, sb.Stage.TRAIN),
                brain.compute_forward(wrong, sb.Stage.TRAIN))
    assert not torch.allclose(a["emo"], b["emo"])


def test_pipeline_rows_read_the_asr_transcript_at_evaluation(tmp_path):
    brain = _brain("combined_asr_cpu.yaml", tmp_path)
    _ready(brain)
    right, wrong = _batch(brain.vocab, SENTENCES[:2]), _batch(brain.vocab, SENTENCES[2:])
    with torch.no_grad():
        a, b = brain.compute_forward(right, sb.Stage.TEST), brain.compute_forward(wrong, sb.Stage.TEST)
    assert torch.equal(a["emo"], b["emo"]) and a["hypotheses"] == b["hypotheses"]
    assert not any(p.requires_grad for p in brain.modules.asr_encoder.parameters())  # frozen


def test_loss_weights_asr_by_0_2_and_ser_by_0_8(tmp_path):
    brain = _brain("asr_ser_cpu.yaml", tmp_path)
    batch = _batch(brain.vocab, SENTENCES[:2])
    with torch.no_grad():
        predictions = brain.compute_forward(batch, sb.Stage.TRAIN)
        loss = brain.compute_objectives(predictions, batch, sb.Stage.TRAIN)
    ser = sb.nnet.losses.nll_loss(predictions["emo"], batch.emo_encoded[0].squeeze(1))
    asr = sb.nnet.losses.nll_loss(predictions["asr_log_probs"], batch.tokens_eos[0],
                                  length=batch.tokens_eos[1])
    assert abs(ser - asr) > 0.1  # the weights matter
    assert torch.allclose(loss, 0.2 * asr + 0.8 * ser)


def test_baselines_train_on_the_ser_loss_alone(tmp_path):
    brain = _brain("combined_asr_cpu.yaml", tmp_path)
    batch = _batch(brain.vocab, SENTENCES[:2])
    with torch.no_grad():
        predictions = brain.compute_forward(batch, sb.Stage.TRAIN)
        loss = brain.compute_objectives(predictions, batch, sb.Stage.TRAIN)
    assert torch.allclose(loss, sb.nnet.losses.nll_loss(predictions["emo"],
                                                        batch.emo_encoded[0].squeeze(1)))


def _sequence_log_prob(brain, enc, enc_lens, hyp):
    """log P(hyp, </s>) under the decoder, teacher-forced."""
    tokens, _ = bos_sequences([hyp], brain.vocab.bos_index)
    logits, _ = brain.hparams.asr_decoder(tokens, enc, enc_lens)
    log_probs = torch.log_softmax(logits[0], dim=-1)
    targets = list(hyp) + [brain.vocab.eos_index]
    return sum(log_probs[t, w].item() for t, w in enumerate(targets))


def test_beam_4_finds_a_hypothesis_at_least_as_likely_as_greedy(tmp_path):
    """Without length normalisation a beam of 4 keeps greedy's path among its candidates
    until a better one wins: its best is never less likely than greedy's."""
    brain = _brain("asr_ser_cpu.yaml", tmp_path, max_decode_ratio=0.5)
    _ready(brain)
    beam, greedy = brain.hparams.test_search, brain.hparams.valid_search
    beam.length_normalization, beam.using_eos_threshold = False, False
    assert beam.beam_size == 4
    batch = _batch(brain.vocab, SENTENCES)
    better = 0
    with torch.no_grad():
        enc, enc_lens = brain.encode(*batch.sig)
        beam_hyps, _, _, _ = beam(enc, enc_lens)
        greedy_hyps, _, _, _ = greedy(enc, enc_lens)
        for i in range(len(SENTENCES)):
            one = (enc[i:i + 1], enc_lens[i:i + 1])
            p_beam = _sequence_log_prob(brain, *one, beam_hyps[i])
            p_greedy = _sequence_log_prob(brain, *one, greedy_hyps[i])
            assert p_beam >= p_greedy - 1e-4
            better += p_beam > p_greedy + 1e-4
    assert better  # the beam found something greedy did not (else the test shows nothing)


def test_word_vocabulary_maps_unknown_words_to_unk(tmp_path):
    vocab = _vocab(tmp_path)
    assert len(vocab) == 3 + len({w for s in SENTENCES for w in s.split()})
    ids = vocab.encode("I MISS THE ZEBRA")
    assert ids[-1] == vocab.unk_index and vocab.unk_index not in ids[:-1]
    assert vocab.decode(vocab.encode("GET OUT OF MY HOUSE")) == "GET OUT OF MY HOUSE"
    assert vocab.decode([vocab.bos_index] + ids + [vocab.eos_index]) == "I MISS THE <unk>"


def test_a_yaml_inconsistent_with_its_streams_is_refused(tmp_path):
    with pytest.raises(ValueError, match="need"):
        _brain("text_cpu.yaml", tmp_path, text_source="asr")


STUDY = load_recipe_script("a2w_asr_ser", "study")


def _summary(scheme, wa, ua, wer=None, confusion=None):
    pooled = {"WA": wa, "UA": ua, "labels": ["ang", "hap", "neu", "sad"],
              "confusion": confusion or [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]}
    if wer is not None:
        pooled["WER"] = wer
    return {"scheme": scheme, "folds": [1, 2], "conditions": {"clean": {"pooled": pooled}}}


def _write(folder, row, summary):
    os.makedirs(folder / row)
    with open(folder / row / "summary.json", "w") as f:
        json.dump(summary, f)


def test_study_tables_put_ours_beside_the_paper(tmp_path):
    confusion = [[9, 1, 0, 0], [2, 8, 3, 1], [0, 4, 7, 0], [0, 0, 1, 5]]  # ang hap neu sad
    _write(tmp_path, "audio", _summary("session5", 50.0, 51.0))
    _write(tmp_path, "combined_asr", _summary("session5", 60.0, 61.0, wer=42.0))
    _write(tmp_path, "asr_ser", _summary("session5", 70.0, 71.0, wer=30.0, confusion=confusion))
    (tmp_path / "a2w").mkdir()
    (tmp_path / "a2w" / "test_wer.txt").write_text("12.30\n")
    STUDY.write_tables(str(tmp_path), str(tmp_path / "a2w"))
    table1 = (tmp_path / "table1.md").read_text()
    assert "| Audio-based | 55.7 | 57.0 | - | 50.0 | 51.0 | - | 1,2 |" in table1
    assert "| Combined (ASR transcripts) | 60.1 | 60.7 | 40.7 | 60.0 | 61.0 | 42.0 | 1,2 |" in table1
    assert "| Text-based | 63.7 | 63.6 | - | not run |" in table1
    assert "before fine-tuning (pre-trained A2W, pipeline rows): 42.0 %" in table1
    assert "(ASR-SER): 30.0 %" in table1 and "WER 12.3 % (paper: 14.9 %)" in table1
    table3 = (tmp_path / "table3.md").read_text()
    # paper order happy, sad, neutral, angry; true happy row: predicted hap 8, sad 1, neu 3, ang 2
    assert "| hap | 8 / 1159 | 1 / 81 | 3 / 280 | 2 / 113 |" in table3
    assert "| ang | 1 / 105 | 0 / 18 | 0 / 113 | 9 / 865 |" in table3
    assert not (tmp_path / "table5.md").exists()


def test_study_writes_table5_for_the_speaker_dependent_folds(tmp_path):
    _write(tmp_path, "asr_ser", _summary("random5", 80.0, 81.0, wer=20.0))
    STUDY.write_tables(str(tmp_path))
    table5 = (tmp_path / "table5.md").read_text()
    assert "| ASR-SER model | 75.5 | 76.4 | 29.8 | 80.0 | 81.0 | 20.0 | 1,2 |" in table5
    assert not (tmp_path / "table1.md").exists()


PRETRAIN = load_recipe_script("a2w_asr_ser", "pretrain_a2w")


def test_pretraining_mixes_character_ctc_in_the_first_epochs_only(tmp_path):
    """0.3 * CTC + 0.7 * CE during the first ``number_of_ctc_epochs`` epochs, CE after."""
    vocab = _vocab(tmp_path)
    with open(os.path.join(RECIPE, "hparams", "pretrain_a2w_cpu.yaml")) as f:
        hp = load_hyperpyyaml(f, {"data_folder": str(tmp_path), "output_folder": str(tmp_path),
                                  "vocab_size": len(vocab), "encoder_layers": 1,
                                  "encoder_size": 16})
    brain = PRETRAIN.A2WBrain(modules=hp["modules"], hparams=hp, run_opts={"device": "cpu"})
    brain.vocab = vocab
    batch = _batch(vocab, SENTENCES[:2])
    assert hp["ctc_weight"] == 0.3 and hp["number_of_ctc_epochs"] == 10
    losses = {}
    with torch.no_grad():
        for epoch in (10, 11):
            hp["epoch_counter"].current = epoch
            predictions = brain.compute_forward(batch, sb.Stage.TRAIN)
            losses[epoch] = (brain.compute_objectives(predictions, batch, sb.Stage.TRAIN),
                             predictions)
    loss, (log_probs, _, ctc_log_probs, feat_lens) = losses[10]
    ce = sb.nnet.losses.nll_loss(log_probs, batch.tokens_eos[0], length=batch.tokens_eos[1])
    ctc = sb.nnet.losses.ctc_loss(ctc_log_probs, batch.tokens[0], feat_lens, batch.tokens[1],
                                  blank_index=0)
    assert torch.allclose(loss, 0.3 * ctc + 0.7 * ce)
    loss, (log_probs, _, ctc_log_probs, _) = losses[11]
    assert ctc_log_probs is None
    assert torch.allclose(loss, sb.nnet.losses.nll_loss(log_probs, batch.tokens_eos[0],
                                                        length=batch.tokens_eos[1]))
