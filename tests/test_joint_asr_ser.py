"""Joint ASR-SER recipe: loss weighting, no reference text at evaluation, fusion shapes,
CTC units, LibriSpeech prep, Table 1 arithmetic, the study runner."""

import argparse
import doctest
import importlib.util
import json
import os
import sys

import pytest
import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml

from conftest import REPO
from speechbrain_ext.ctc import CHARACTERS, character_encoder, greedy_transcripts
from speechbrain_ext.nnet.fusion import ResidualMLP, TokenMeanPooling

RECIPE = os.path.join(REPO, "recipes", "joint_asr_ser")
sys.path.insert(0, RECIPE)  # the scripts import their folder's modules, as when run
from table1 import format_joint_table  # noqa: E402


def _load_script(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(RECIPE, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FrameEncoder(torch.nn.Module):
    """Cuts the waveform into 10 ms frames: a stand-in encoder with no parameters to train."""

    def forward(self, wavs, lens):
        return wavs.unfold(1, 160, 160)


class SpyTextEncoder(torch.nn.Module):
    """Records the texts it is given; embeds them character by character."""

    def __init__(self):
        super().__init__()
        self.seen = []
        self.embedding = torch.nn.Embedding(128, 8)

    def forward(self, texts, return_tokens=True):
        self.seen.append(list(texts))
        ids = [[ord(c) % 128 for c in text] or [0] for text in texts]
        width = max(len(i) for i in ids)
        mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i in ids])
        padded = torch.tensor([i + [0] * (width - len(i)) for i in ids])
        return {"attention_mask": mask}, self.embedding(padded)


def _joint_brain(ser_text_in_training="hypothesis", ser_weight=0.1):
    torch.manual_seed(0)
    module = _load_script("train_joint")
    modules = {"encoder": FrameEncoder(), "ctc_head": torch.nn.Linear(160, len(CHARACTERS) + 1),
               "text_encoder": SpyTextEncoder(), "acoustic_mlp": ResidualMLP(160, 16, 2),
               "linguistic_mlp": ResidualMLP(8, 16, 2),
               "emotion_classifier": torch.nn.Linear(32, 4)}
    hparams = {
        "log_softmax": sb.nnet.activations.Softmax(apply_log=True),
        "ctc_decoder": greedy_transcripts, "ser_text_in_training": ser_text_in_training,
        "freeze_text_encoder": False, "token_pooling": TokenMeanPooling(),
        "mean_pooling": sb.nnet.pooling.StatisticsPooling(return_std=False),
        "ser_weight": ser_weight, "ser_cost": sb.nnet.losses.nll_loss,
        "ctc_cost": lambda *a: sb.nnet.losses.ctc_loss(*a, blank_index=0),
        "wer_stats": sb.utils.metric_stats.ErrorRateStats,
        "ser_stats": lambda: sb.utils.metric_stats.MetricStats(
            metric=lambda p, y: sb.nnet.losses.classification_error(p, y, reduction="batch")),
    }
    brain = module.JointASRSERBrain(modules=modules, hparams=hparams, run_opts={"device": "cpu"})
    brain.ctc_encoder = character_encoder()
    return brain


def _batch(references):
    encoder = character_encoder()
    return sb.dataio.batch.PaddedBatch([
        {"id": f"u{i}", "sig": torch.randn(8000 + 1600 * i, generator=torch.Generator().manual_seed(i)),
         "words": words, "tokens": torch.LongTensor(encoder.encode_sequence(list(words))),
         "emo_encoded": torch.LongTensor([i % 4]), "emo": "neu", "speaker": "Ses01F"}
        for i, words in enumerate(references)])


def test_evaluation_never_feeds_the_reference_transcript_to_the_ser_head():
    # Even with ser_text_in_training: reference, validation and test read the hypothesis.
    brain = _joint_brain(ser_text_in_training="reference")
    brain.modules.eval()
    spy = brain.modules.text_encoder
    for stage in (sb.Stage.VALID, sb.Stage.TEST):
        spy.seen.clear()
        out_a = brain.compute_forward(_batch(["I AM SO HAPPY", "THAT IS TERRIBLE"]), stage)
        out_b = brain.compute_forward(_batch(["WORDS THAT DIFFER", "COMPLETELY HERE"]), stage)
        assert spy.seen == [out_a["hypotheses"], out_b["hypotheses"]]
        assert out_a["hypotheses"] == out_b["hypotheses"]  # same audio, same transcript
        assert not {"I AM SO HAPPY", "WORDS THAT DIFFER"} & set(sum(spy.seen, []))
        # ... so the emotion posteriors do not depend on the reference at all
        # (StatisticsPooling adds ~1e-5 noise, hence the tolerance).
        assert torch.allclose(out_a["emo"], out_b["emo"], atol=1e-3)


def test_training_reads_the_reference_only_when_asked():
    # The same probe sees the reference in training with ser_text_in_training: reference,
    # so the evaluation test above would notice a reference reaching the head.
    batch = _batch(["I AM SO HAPPY", "THAT IS TERRIBLE"])
    brain = _joint_brain(ser_text_in_training="reference")
    out = brain.compute_forward(batch, sb.Stage.TRAIN)
    assert brain.modules.text_encoder.seen == [["I AM SO HAPPY", "THAT IS TERRIBLE"]]
    assert out["ser_texts"] != out["hypotheses"]
    brain = _joint_brain(ser_text_in_training="hypothesis")
    out = brain.compute_forward(batch, sb.Stage.TRAIN)
    assert brain.modules.text_encoder.seen == [out["hypotheses"]]


@pytest.mark.parametrize("ser_weight", [0.1, 0.5, 1.0])
def test_joint_loss_is_alpha_ser_plus_one_minus_alpha_asr(ser_weight):
    brain = _joint_brain(ser_weight=ser_weight)
    batch = _batch(["I AM SO HAPPY", "THAT IS TERRIBLE"])
    out = brain.compute_forward(batch, sb.Stage.TRAIN)
    loss = brain.compute_objectives(out, batch, sb.Stage.TRAIN)
    emo = batch.emo_encoded[0].squeeze(1)
    ser = sb.nnet.losses.nll_loss(out["emo"], emo)
    asr = sb.nnet.losses.ctc_loss(out["ctc"], *batch.tokens[:1], out["lens"], batch.tokens[1],
                                  blank_index=0)
    assert ser.item() != pytest.approx(asr.item(), rel=0.05)  # the weighting is observable
    assert loss.item() == pytest.approx(ser_weight * ser.item() + (1 - ser_weight) * asr.item(),
                                        rel=1e-5)


def test_residual_mlp_projects_then_adds_its_skip_connections():
    mlp = ResidualMLP(input_size=320, hidden_size=256, n_blocks=2, dropout=0.0)
    x = torch.randn(3, 320)
    assert mlp(x).shape == (3, 256)
    assert len(mlp.blocks) == 2 and mlp.projection.weight.shape == (256, 320)
    # Silence every block's layer: the output is the projection, carried by the skips.
    for block in mlp.blocks:
        torch.nn.init.zeros_(block.linear.weight)
        torch.nn.init.zeros_(block.linear.bias)
    assert torch.allclose(mlp(x), mlp.projection(x))
    # A block adds its transformation to its input (h + f(h)), not instead of it.
    block = mlp.blocks[0]
    torch.nn.init.constant_(block.linear.bias, 1.0)
    h = torch.randn(3, 256)
    assert torch.allclose(block(h), h + 1.0)


def test_joint_yaml_fusion_sizes_match_its_encoders(tmp_path):
    """Acoustic MLP input = encoder output (320 for the CRNN), linguistic MLP input =
    MiniLM's hidden size (384), classifier input = the two MLP outputs concatenated."""
    with open(os.path.join(RECIPE, "hparams", "joint_crnn.yaml")) as f:
        hp = load_hyperpyyaml(f, {"data_folder": str(tmp_path), "output_folder": str(tmp_path),
                                  "pretrained_ctc_folder": str(tmp_path)})
    frames = hp["encoder"](torch.randn(2, 16000), torch.ones(2))
    assert frames.shape[-1] == hp["acoustic_mlp"].projection.in_features == 320
    tokens, states = hp["text_encoder"](["I AM HAPPY"], return_tokens=True)
    assert states.shape[-1] == hp["linguistic_mlp"].projection.in_features == 384
    fused = hp["acoustic_mlp"].projection.out_features + hp["linguistic_mlp"].projection.out_features
    assert hp["emotion_classifier"].w.in_features == fused == 512
    assert hp["emotion_classifier"].w.out_features == 4
    assert hp["ctc_lin"].w.out_features == len(character_encoder()) == 29
    assert hp["ser_weight"] == 0.1
    assert hp["speed_perturb"].speeds == [95, 100, 105]


def test_character_units_cover_the_prepared_words():
    from speechbrain_ext.ctc import normalize_words

    encoder = character_encoder()
    words = normalize_words("Don't you DARE, [LAUGHTER] say that!")
    assert encoder.decode_ndim(encoder.encode_sequence(list(words))) == list(words)
    assert encoder.lab2ind["<blank>"] == 0


def test_librispeech_prep_reads_the_corpus_and_fails_clearly(corpora, tmp_path):
    from data_prep.librispeech_prepare import LibriSpeechPrepError, prepare_librispeech

    paths = prepare_librispeech(corpora["librispeech"], str(tmp_path / "prep"))
    train = json.load(open(paths["train-clean-100"]))
    assert len(train) == 8 * 4  # tiny corpus: 8 speakers x 4 utterances
    entry = train["19-1019-0000"]
    assert entry["speaker"] == "19" and entry["duration"] > 0.5
    trans = os.path.join(corpora["librispeech"], "train-clean-100", "19", "1019", "19-1019.trans.txt")
    assert open(trans).readline().split(" ", 1)[1].strip() == entry["words"]
    with pytest.raises(LibriSpeechPrepError, match="missing split folder"):
        prepare_librispeech(corpora["librispeech"], str(tmp_path / "x"), ["train-other-500"])
    with pytest.raises(LibriSpeechPrepError, match="not found"):
        prepare_librispeech(str(tmp_path / "nowhere"), str(tmp_path / "x"))


def test_table1_reproduces_the_papers_arithmetic():
    # Numbers of the paper's Table 1 (clean and SNR 5 Speech rows): our formula gives
    # its Rel Imp columns, relative for WER and in points for accuracy.
    def summary(rows):
        return {"conditions": {c: {"pooled": m} for c, m in rows.items()}}
    summaries = {
        "asr": summary({"clean": {"WER": 16.8}, "babble_5": {"WER": 74.6}}),
        "joint": summary({"clean": {"WER": 15.0, "WA": 74.2}, "babble_5": {"WER": 86.4, "WA": 52.4}}),
        "ser": summary({"clean": {"WA": 71.9}, "babble_5": {"WA": 53.3}}),
        "asr_noisy": summary({"clean": {"WER": 19.8}}),
        "joint_noisy": summary({"clean": {"WER": 15.6, "WA": 71.7}}),
        "ser_noisy": summary({"clean": {"WA": 70.2}}),
    }
    rows = format_joint_table(summaries, ["clean", "babble_5"]).splitlines()[2:]
    assert rows[0] == ("| clean | 16.8 | 15.0 | 10.7 | 19.8 | 15.6 | 21.2 | 71.9 | 74.2 | 2.3 "
                       "| 70.2 | 71.7 | 1.5 |")
    assert rows[1] == ("| babble_5 | 74.6 | 86.4 | -15.8 | n/a | n/a | n/a | 53.3 | 52.4 | -0.9 "
                       "| n/a | n/a | n/a |")


def test_study_requires_musan_for_noisy_models_and_writes_tables(tmp_path):
    study = _load_script("study")
    with pytest.raises(SystemExit):
        study.main(["--data_folder", str(tmp_path), "--models", "joint_noisy",
                    "--study_folder", str(tmp_path)])
    with pytest.raises(SystemExit):
        study.main(["--data_folder", str(tmp_path), "--models", "joint", "--encoder", "crnn",
                    "--study_folder", str(tmp_path)])  # no --librispeech_folder
    # Tables from finished runs: two models' summaries written by the fold runner.
    from speechbrain_ext.fold_runner import summarize_folds, write_summary
    from speechbrain_ext.metrics import write_predictions
    for model, rows in (("asr", [{"id": "a", "emo": "neu", "words": "A B", "words_pred": "A"}]),
                        ("joint", [{"id": "a", "emo": "neu", "emo_pred": "neu", "words": "A B",
                                    "words_pred": "A B"}])):
        os.makedirs(tmp_path / model / "fold1")
        write_predictions(str(tmp_path / model / "fold1" / "predictions.json"), rows)
        write_summary(str(tmp_path / model), summarize_folds(str(tmp_path / model), "speaker10", [1]))
    assert study.main(["--tables_only", "--study_folder", str(tmp_path)]) == 0
    table = (tmp_path / "table1.md").read_text()
    assert "| Clean | 50.0 | 0.0 | 100.0 |" in table
    assert (tmp_path / "fig2.png").stat().st_size > 0


def test_study_runs_the_pre_training_only_when_its_export_is_missing(tmp_path, monkeypatch):
    study = _load_script("study")
    calls, envs = [], []
    monkeypatch.setattr(study.subprocess, "run",
                        lambda cmd, check, env: calls.append(cmd) or envs.append(env))
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    args = argparse.Namespace(study_folder=str(tmp_path), librispeech_folder="ls",
                              pretrain_epochs=6, pretrain_lr=0.0015)
    _, pretrained = study.pretrain_stand_in(args)
    assert len(calls) == 1 and calls[0][-2:] == ["--number_of_epochs=6", "--lr=0.0015"]
    # OpenMP threads that wait passively leave the cores to the BiGRU's direction threads
    assert envs[0]["OMP_WAIT_POLICY"] == "PASSIVE" and envs[0]["PATH"] == os.environ["PATH"]
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # the user's setting wins
    study.pretrain_stand_in(argparse.Namespace(**dict(vars(args),
                                                      study_folder=str(tmp_path / "b"))))
    assert envs[1]["OMP_WAIT_POLICY"] == "ACTIVE"
    calls.pop()  # that second study folder's run; the cache check below is the first's
    os.makedirs(pretrained)  # pretrain_ctc.py renames its export into place when complete
    study.pretrain_stand_in(args)
    assert len(calls) == 1  # cached: no second run


def test_missing_pretrained_stand_in_fails_with_the_command_that_makes_it(tmp_path):
    from recipe_helpers import load_pretrained

    with open(os.path.join(RECIPE, "hparams", "ser_crnn.yaml")) as f:
        hp = load_hyperpyyaml(f, {"data_folder": str(tmp_path), "output_folder": str(tmp_path),
                                  "pretrained_ctc_folder": str(tmp_path / "nowhere")})
    with pytest.raises(SystemExit, match="nowhere/encoder.ckpt.*pretrain_ctc.py"):
        load_pretrained(hp)


def test_joint_training_step_works_with_an_augmenter_that_adds_copies():
    # Upstream augmentation configs often concatenate the original batch: emotion labels
    # and CTC targets must be replicated with it.
    from speechbrain.augment.augmenter import Augmenter
    from speechbrain.augment.time_domain import SpeedPerturb

    brain = _joint_brain()
    brain.hparams.wav_augment = Augmenter(concat_original=True,
                                          augmentations=[SpeedPerturb(16000, speeds=[90])])
    batch = _batch(["I AM SO HAPPY", "THAT IS TERRIBLE"])
    out = brain.compute_forward(batch, sb.Stage.TRAIN)
    assert out["emo"].shape[0] == len(out["hypotheses"]) == 4
    assert torch.isfinite(brain.compute_objectives(out, batch, sb.Stage.TRAIN))


@pytest.mark.parametrize("name", ["table1", "recipe_helpers"])
def test_recipe_module_examples_run(name):
    # The recipe folder is not a package pytest collects: run its examples here.
    result = doctest.testmod(_load_script(name))
    assert result.attempted > 0 and result.failed == 0


def test_joint_brain_emotion_of_an_utterance_does_not_depend_on_its_batch():
    """Alone, or padded beside a 3x longer utterance (more frames, a longer transcript,
    so padded frames and padded tokens): the same emotion posteriors."""
    brain = _joint_brain()
    brain.modules.eval()
    encoder = character_encoder()
    signals = [0.1 * torch.randn(8000, generator=torch.Generator().manual_seed(k))
               for k in range(2)]
    signals[1] = signals[1].repeat(3)

    def batch(n):
        return sb.dataio.batch.PaddedBatch([
            {"id": f"u{i}", "sig": signals[i], "words": "A", "emo": "neu", "speaker": "x",
             "tokens": torch.LongTensor(encoder.encode_sequence(["A"])),
             "emo_encoded": torch.LongTensor([0])} for i in range(n)])

    with torch.no_grad():
        alone = brain.compute_forward(batch(1), sb.Stage.TEST)
        together = brain.compute_forward(batch(2), sb.Stage.TEST)
    hyps = together["hypotheses"]
    assert alone["hypotheses"][0] == hyps[0] and len(hyps[1]) > len(hyps[0])
    # StatisticsPooling adds ~1e-5 noise to the mean, hence the tolerance.
    assert torch.allclose(alone["emo"][0], together["emo"][0], atol=1e-3)


def test_wer_counts_only_turns_with_a_reference_word():
    # The rule of validation (here) and of the test summary (speechbrain_ext.metrics).
    brain = _joint_brain()
    batch = _batch(["I AM SO HAPPY", ""])
    brain.on_stage_start(sb.Stage.VALID)
    out = brain.compute_forward(batch, sb.Stage.VALID)
    brain.compute_objectives(out, batch, sb.Stage.VALID)
    assert [s["key"] for s in brain.wer_metric.scores] == ["u0"]


@pytest.mark.parametrize("name", ["asr_w2v2", "asr_w2v2_noisy", "joint_w2v2", "joint_w2v2_noisy"])
def test_w2v2_asr_channel_is_the_upstream_librispeech_ctc_recipe(name, tiny_wav2vec2, tiny_bert,
                                                                 tmp_path):
    """The paper uses upstream's LibriSpeech wav2vec2 CTC recipe as it is: a 2 x 1024
    DNN before the CTC layer, NewBob 0.8 (head) / 0.9 (wav2vec2), and SpeechBrain's
    time-domain augmentation (speed 95/100/105, frequency drop, chunk drop)."""
    overrides = {"data_folder": str(tmp_path), "output_folder": str(tmp_path),
                 "wav2vec2_hub": tiny_wav2vec2, "encoder_dim": 32}
    if name.startswith("joint"):
        overrides.update(text_encoder_hub=tiny_bert, text_encoder_dim=16)
    if name.endswith("_noisy"):
        overrides.update(musan_folder=str(tmp_path))
    with open(os.path.join(RECIPE, "hparams", f"{name}.yaml")) as f:
        hp = load_hyperpyyaml(f, overrides)
    linears = [m for m in hp["ctc_head"].modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(32, 1024), (1024, 1024),
                                                                   (1024, 29)]
    assert any(isinstance(m, torch.nn.LeakyReLU) for m in hp["ctc_head"].modules())
    assert hp["ctc_head"](torch.randn(2, 7, 32)).shape == (2, 7, 29)
    assert hp["lr_annealing"].annealing_factor == 0.8
    assert hp["lr_annealing_encoder"].annealing_factor == 0.9
    augment = hp["wav_augment"]
    augmentations = list(augment.augmentations.values())
    kinds = [type(a).__name__ for a in augmentations]
    assert kinds[:3] == ["SpeedPerturb", "DropFreq", "DropChunk"]
    assert kinds[3:] == (["AddMusanNoise"] if name.endswith("_noisy") else [])
    assert augmentations[0].speeds == [95, 100, 105] and augment.concat_original
    assert augment.min_augmentations == augment.max_augmentations == len(kinds)


def test_joint_wav_augment_changes_what_training_sees():
    from speechbrain.augment.augmenter import Augmenter
    from speechbrain.augment.time_domain import SpeedPerturb

    brain = _joint_brain()
    brain.hparams.wav_augment = Augmenter(augmentations=[SpeedPerturb(16000, speeds=[80])])
    seen = []
    brain.modules.encoder.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    batch = _batch(["I AM SO HAPPY", "THAT IS TERRIBLE"])
    brain.compute_forward(batch, sb.Stage.TRAIN)
    brain.compute_forward(batch, sb.Stage.VALID)
    clean = batch.sig[0]
    assert abs(seen[0].shape[1] - clean.shape[1] / 0.8) <= 1  # training: slowed to 80 %
    assert torch.equal(seen[1], clean)  # validation: the clean waveform
