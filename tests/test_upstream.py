"""Facts for comparisons with upstream SpeechBrain's IEMOCAP recipes: the speakers its
preparation gets wrong, and how its --test_spk_id maps onto our speaker10 folds."""

import csv
import re
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO
from data_prep.iemocap_prepare import prepare_iemocap, upstream_misassigned
from data_prep.upstream import misassigned_by_fold
from speechbrain_ext.folds import split_fold


def test_upstream_speaker_rule_misassigns_exactly_the_female_turns_of_suffixed_dialogs(
        iemocap, tmp_path):
    data = json.load(open(prepare_iemocap(iemocap, str(tmp_path))))
    wrong = upstream_misassigned(data)
    # Upstream's rule, computed here: the gender letter at character 18 of a scripted
    # turn id, else at 15; anything but "F" is the man of the session.
    expected = {}
    for turn, entry in data.items():
        letter = turn[18] if turn[7] == "s" else turn[15]
        if turn[:5] + ("F" if letter == "F" else "M") != entry["speaker"]:
            expected.setdefault(turn.rsplit("_", 1)[0], []).append(turn)
    assert wrong == {dialog: sorted(turns) for dialog, turns in expected.items()}
    assert wrong, "the tiny tree has dialogs with a suffix letter"
    assert set(wrong) <= {"Ses03M_impro05a", "Ses03M_impro05b", "Ses03M_impro08a",
                          "Ses03M_impro08b", "Ses05M_script01_1b"}
    assert all(data[t]["speaker"].endswith("F") for turns in wrong.values() for t in turns)


def test_speaker10_fold_k_is_upstreams_test_spk_id_k(iemocap, tmp_path):
    data = json.load(open(prepare_iemocap(iemocap, str(tmp_path))))
    for k in range(1, 11):
        split = split_fold(data, "speaker10", k)
        session, woman = (k + 1) // 2, k % 2 == 1  # upstream: 2s - 1 woman, 2s man
        test = f"Ses0{session}{'F' if woman else 'M'}"
        valid = f"Ses0{session}{'M' if woman else 'F'}"  # upstream: the session's other
        assert {data[t]["speaker"] for t in split["test"]} == {test}
        assert {data[t]["speaker"] for t in split["valid"]} == {valid}


UPSTREAM = os.path.join(REPO, "..", "shared", "upstream", "speechbrain_9c826ef", "recipes",
                        "IEMOCAP", "emotion_recognition")


def test_folds_that_upstream_speakers_would_change_are_those_of_the_suffixed_dialogs(
        iemocap, tmp_path):
    data = json.load(open(prepare_iemocap(iemocap, str(tmp_path))))
    moved = misassigned_by_fold(data, "speaker10", range(1, 11), 1234)
    wrong = [t for turns in upstream_misassigned(data).values() for t in turns]
    sessions = {int(t[4]) for t in wrong}  # the woman and the man of these sessions
    assert set(moved) == {k for s in sessions for k in (2 * s - 1, 2 * s)}
    assert set(moved) <= {5, 6, 9, 10}  # Sessions 3 and 5 (fold k = upstream speaker k)
    for fold, turns in moved.items():  # exactly the session's mis-read turns change place
        assert turns == sorted(t for t in wrong if int(t[4]) == (fold + 1) // 2)
    assert misassigned_by_fold(data, "session5", range(1, 6), 1234) == {}  # sessions hold


@pytest.mark.skipif(not os.path.isdir(UPSTREAM), reason="upstream SpeechBrain's IEMOCAP recipes "
                    "(the reference copy beside the repository) are not present")
def test_upstream_train_py_runs_on_our_fold_and_is_summarised_like_ours(iemocap, tmp_path):
    out = tmp_path / "upstream"
    cmd = [sys.executable, "-m", "data_prep.upstream", "--recipe_dir", UPSTREAM, "--folds",
           "speaker10", "--fold_ids", "3", "--data_folder", iemocap, "--output_folder",
           str(out), "--max_duration", "6", "--upstream_commit", "9c826ef", "--",
           "--debug", "--debug_epochs=1", "--debug_batches=1"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fold = out / "fold3"
    test = json.load(open(fold / "test.json"))
    assert {e["speaker"] for e in test.values()} == {"Ses02F"}  # speaker10 fold 3
    # WA by hand from upstream's own files: indices through its label encoder.
    labels = {}
    for line in open(fold / "save" / "label_encoder.txt"):
        if "=>" in line and "starting_index" not in line:
            label, index = line.split("=>")
            labels[int(index)] = label.strip().strip("'")
    with open(fold / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(labels[int(r["true_value"])] == test[r["id"]]["emo"] for r in rows)
    wa = 100 * sum(r["prediction"] == r["true_value"] for r in rows) / len(rows)
    summary = json.load(open(out / "summary.json"))
    assert summary["name"] == "upstream train.py (9c826ef)"
    assert summary["conditions"]["clean"]["pooled"]["WA"] == pytest.approx(wa)
    assert summary["conditions"]["clean"]["pooled"]["n"] == len(rows)
    assert (out / "summary.md").exists() and (out / "confusion.png").exists()
    # Resume: a finished fold is not run again.
    before = (fold / "predictions.json").stat().st_mtime_ns
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0 and (fold / "predictions.json").stat().st_mtime_ns == before


@pytest.mark.skipif(not os.path.isdir(UPSTREAM), reason="upstream SpeechBrain's IEMOCAP recipes "
                    "(the reference copy beside the repository) are not present")
def test_upstream_wav2vec2_recipe_gets_per_turn_predictions_of_its_tested_checkpoint(
        iemocap, tiny_wav2vec2, tmp_path):
    out = tmp_path / "upstream_w2v2"
    cmd = [sys.executable, "-m", "data_prep.upstream", "--recipe_dir", UPSTREAM, "--script",
           "train_with_wav2vec2.py", "--folds", "speaker10", "--fold_ids", "3", "--data_folder",
           iemocap, "--output_folder", str(out), "--max_duration", "6", "--",
           f"--wav2vec2_hub={tiny_wav2vec2}", "--encoder_dim=32", "--debug",
           "--debug_persistently", "--debug_epochs=3", "--debug_batches=6", "--batch_size=1",
           "--lr=0.05", "--lr_wav2vec2=0.01"]  # far from the initial weights
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fold = out / "fold3"
    test = json.load(open(fold / "test.json"))
    rows = json.load(open(fold / "predictions.json"))
    assert sorted(r["id"] for r in rows) == sorted(test)
    assert all(r["emo"] == test[r["id"]]["emo"] for r in rows)
    # Upstream's own test stage logged its loss and error rate (3 significant digits).
    # With batches of one turn (its test batches are shuffled, and a padded turn's
    # output depends on its batch) the predictions recomputed from the checkpoint it
    # tested give the same; the summary is theirs.
    log = (fold / "train_log.txt").read_text()
    loss, error = (float(x) for x in re.findall(
        r"test loss: ([0-9.e+-]+), test error_rate: ([0-9.e+-]+)", log)[-1])
    check = json.load(open(fold / "test_check.json"))
    assert check["logged"] == {"error_rate": error, "loss": loss}
    assert len(test) == 6 and check["recomputed"]["n"] == 6  # all of them, --debug_batches
    assert check["recomputed"]["error_rate"] == pytest.approx(error, abs=0.0005)
    assert check["recomputed"]["loss"] == pytest.approx(loss, abs=0.005)
    summary = json.load(open(out / "summary.json"))
    assert summary["conditions"]["clean"]["pooled"]["WA"] == pytest.approx(
        100 * (1 - check["recomputed"]["error_rate"]))
    assert summary["name"] == "upstream train_with_wav2vec2.py"


def _cv_folder(root, name, predicted_by_fold):
    """A finished cross-validation folder with hand-made predictions (every turn is
    ``ang``), summarised."""
    from speechbrain_ext.fold_runner import summarize_folds, write_summary
    from speechbrain_ext.metrics import write_predictions

    cv = root / name
    for fold, predicted in predicted_by_fold.items():
        os.makedirs(cv / f"fold{fold}")
        write_predictions(str(cv / f"fold{fold}" / "predictions.json"),
                          [{"id": f"{fold}{i}", "emo": "ang", "emo_pred": p}
                           for i, p in enumerate(predicted)])
    write_summary(str(cv), summarize_folds(str(cv), "speaker10", list(predicted_by_fold),
                                           name=name))
    return str(cv)


def test_comparison_table_puts_upstream_beside_ours_and_flags_other_folds(tmp_path, capsys):
    from speechbrain_ext.reports import main

    # Folds of unequal size: WA 75 and 0, mean 37.5, pooled 3 / 6 = 50.
    ours = _cv_folder(tmp_path, "ours", {1: ["ang", "ang", "ang", "hap"], 2: ["hap", "hap"]})
    upstream = _cv_folder(tmp_path, "upstream train.py (9c826ef)",
                          {1: ["ang", "hap", "hap", "hap"], 2: ["ang", "ang"]})  # 25, 100
    assert main(["--compare", ours, upstream, "--output", str(tmp_path / "t.md")]) == 0
    table = (tmp_path / "t.md").read_text()
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ours")
            or line.startswith("| upstream")]
    assert [(r[0], r[2], r[5], r[7]) for r in rows] == [
        ("| ours", "1,2", "37.5 ± 53.0", "50.0"),
        ("| upstream train.py (9c826ef)", "1,2", "62.5 ± 53.0", "50.0")]
    assert "NOT COMPARABLE" not in table
    other = _cv_folder(tmp_path, "one fold", {1: ["ang"] * 4})
    main(["--compare", ours, other])
    assert "NOT COMPARABLE" in capsys.readouterr().out


# Upstream's models in our SER script: ser_ecapa.yaml and ser_w2v2_upstream.yaml.
J = os.path.join(REPO, "recipes", "joint_asr_ser", "hparams")


def _load(path, **overrides):
    from hyperpyyaml import load_hyperpyyaml

    with open(path) as f:
        return load_hyperpyyaml(f, overrides)


def _shapes(module):
    return {name: tuple(t.shape) for name, t in module.state_dict().items()}


def _ours(yaml_name, tmp_path, **overrides):
    return _load(os.path.join(J, yaml_name), data_folder=str(tmp_path),
                 output_folder=str(tmp_path / "ours"), **overrides)


def test_ser_ecapa_is_upstreams_ecapa_tdnn_and_cosine_classifier(tmp_path):
    import torch

    ours = _ours("ser_ecapa.yaml", tmp_path)
    fbank, norm, ecapa = ours["encoder"].values()
    # upstream's train.yaml: 80 fbanks, sentence mean norm without std, ECAPA-TDNN
    # channels 512 x 4 + 1536, kernels 5 3 3 3 1, dilations 1 2 3 4 1, attention 64,
    # 96-dim embedding, cosine classifier to the 4 emotions.
    assert fbank.compute_fbanks.n_mels == 80 and not fbank.deltas
    assert (norm.norm_type, norm.std_norm) == ("sentence", False)
    shapes = _shapes(ecapa)
    assert shapes["blocks.0.conv.conv.weight"] == (512, 80, 5)
    assert [shapes[f"blocks.{i}.tdnn1.conv.conv.weight"][0] for i in (1, 2, 3)] == [512] * 3
    assert [ecapa.blocks[i].res2net_block.blocks[0].conv.conv.dilation[0]
            for i in (1, 2, 3)] == [2, 3, 4]
    assert shapes["mfa.conv.conv.weight"] == (1536, 1536, 1)
    assert shapes["asp.tdnn.conv.conv.weight"] == (64, 1536 * 3, 1)
    assert shapes["fc.conv.weight"] == (96, 1536 * 2, 1)
    assert _shapes(ours["classifier"]) == {"weight": (4, 96)}
    assert 5.4e6 < sum(p.numel() for p in ecapa.parameters()) < 5.6e6
    # The loss: upstream's angular margin 0.2, scale 30; posteriors at the same scale.
    margin = ours["compute_cost"].loss_fn
    assert (margin.margin, margin.scale, ours["log_softmax"].scale) == (0.2, 30, 30)
    # A forward through the script's chain: one (batch, 4) score row per utterance.
    wavs = torch.randn(2, 16000)
    frames = ours["encoder"](wavs, torch.tensor([1.0, 0.5]))
    scores = ours["classifier"](ours["mean_pooling"](frames).squeeze(1)).flatten(1)
    assert scores.shape == (2, 4) and scores.abs().max() <= 1  # cosines


@pytest.mark.skipif(not os.path.isdir(UPSTREAM),
                    reason="upstream SpeechBrain's IEMOCAP recipes are not beside the repo")
def test_ser_ecapa_builds_upstreams_module_shapes(tmp_path):
    upstream = _load(os.path.join(UPSTREAM, "hparams", "train.yaml"), data_folder=str(tmp_path),
                     output_folder=str(tmp_path / "upstream"))
    ours = _ours("ser_ecapa.yaml", tmp_path)
    fbank, norm, ecapa = ours["encoder"].values()
    assert _shapes(ecapa) == _shapes(upstream["embedding_model"])
    assert _shapes(ours["classifier"]) == _shapes(upstream["classifier"])
    assert fbank.compute_fbanks.n_mels == upstream["compute_features"].compute_fbanks.n_mels
    assert (norm.norm_type, norm.std_norm) == (upstream["mean_var_norm"].norm_type,
                                              upstream["mean_var_norm"].std_norm)
    for key in ("lr", "weight_decay", "base_lr", "step_size", "grad_accumulation_factor",
                "number_of_epochs", "batch_size", "seed"):
        assert ours[key] == upstream[key], key
    ours_clr, upstream_clr = ours["lr_annealing"], upstream["lr_annealing"]
    assert (ours_clr.mode, ours_clr.gamma, ours_clr.max_lr) == (
        upstream_clr.mode, upstream_clr.gamma, upstream_clr.max_lr)
    assert (ours["compute_cost"].loss_fn.margin, ours["compute_cost"].loss_fn.scale) == (
        upstream["compute_cost"].loss_fn.margin, upstream["compute_cost"].loss_fn.scale)


def _wav2vec2_base_folder(folder):
    """A randomly initialised wav2vec2-base (facebook/wav2vec2-base's architecture: the
    transformers defaults) saved as a local model folder, for both YAMLs."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    Wav2Vec2Model(Wav2Vec2Config(num_hidden_layers=2)).save_pretrained(folder)
    Wav2Vec2FeatureExtractor().save_pretrained(folder)
    return str(folder)


def test_ser_w2v2_upstream_is_wav2vec2_base_on_all_turns(tmp_path):
    import re

    text = open(os.path.join(J, "ser_w2v2_upstream.yaml")).read()
    assert re.search(r"^wav2vec2_hub: facebook/wav2vec2-base\s", text, re.M)
    base = _wav2vec2_base_folder(tmp_path / "w2v2")
    ours = _ours("ser_w2v2_upstream.yaml", tmp_path, wav2vec2_hub=base)
    assert ours["encoder_dim"] == 768 and ours["drop_no_transcript"] is False
    assert _shapes(ours["classifier"]) == {"w.weight": (4, 768)}  # no bias, as upstream
    assert (ours["lr"], ours["lr_encoder"], ours["batch_size"], ours["number_of_epochs"]) == (
        1e-4, 1e-5, 4, 30)


@pytest.mark.skipif(not os.path.isdir(UPSTREAM),
                    reason="upstream SpeechBrain's IEMOCAP recipes are not beside the repo")
def test_ser_w2v2_upstream_builds_upstreams_module_shapes(tmp_path):
    base = _wav2vec2_base_folder(tmp_path / "w2v2")
    upstream = _load(os.path.join(UPSTREAM, "hparams", "train_with_wav2vec2.yaml"),
                     data_folder=str(tmp_path), output_folder=str(tmp_path / "upstream"),
                     wav2vec2_hub=base)
    ours = _ours("ser_w2v2_upstream.yaml", tmp_path, wav2vec2_hub=base)
    upstream_hub = re.search(r"^wav2vec2_hub: (\S+)", open(os.path.join(
        UPSTREAM, "hparams", "train_with_wav2vec2.yaml")).read(), re.M).group(1)
    ours_hub = re.search(r"^wav2vec2_hub: (\S+)", open(os.path.join(
        J, "ser_w2v2_upstream.yaml")).read(), re.M).group(1)
    assert ours_hub == upstream_hub
    assert _shapes(ours["encoder"]) == _shapes(upstream["wav2vec2"])
    assert _shapes(ours["classifier"]) == _shapes(upstream["output_mlp"])
    for key in ("encoder_dim", "lr", "batch_size", "number_of_epochs", "seed",
                "freeze_wav2vec2", "freeze_wav2vec2_conv"):
        assert ours[key] == upstream[key], key
    assert ours["lr_encoder"] == upstream["lr_wav2vec2"]
    for name in ("lr_annealing", "lr_annealing_encoder"):
        assert ours[name].annealing_factor == 0.9 and ours[name].patient == 0
    assert ours["lr_annealing_encoder"].annealing_factor == (
        upstream["lr_annealing_wav2vec2"].annealing_factor)
