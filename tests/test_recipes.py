"""Every hparams file of every recipe runs with --debug on the tiny synthetic corpus;
an interrupted run resumes from its last checkpoint."""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, run_recipe, tree_hash

HPARAMS = sorted(os.path.relpath(p, REPO) for p in glob.glob(f"{REPO}/recipes/*/hparams/*.yaml"))
# Every script that trains something (train*.py, pretrain*.py).
SCRIPTS = sorted(os.path.relpath(p, REPO) for pattern in ("train*.py", "pretrain*.py")
                 for p in glob.glob(f"{REPO}/recipes/*/{pattern}"))
IEMOCAP_HPARAMS = [h for h in HPARAMS if not os.path.basename(h).startswith("pretrain")]


def _script_for(hparams):
    """The recipe's script: train_<task>.py (or <task>.py) whose task starts the YAML name
    (or is it), else the folder's train.py."""
    folder = os.path.dirname(os.path.dirname(hparams))
    name = os.path.basename(hparams)
    scripts = [s for s in SCRIPTS if os.path.dirname(s) == folder]
    for script in scripts:
        task = os.path.basename(script)[:-3].removeprefix("train_")
        if task != "train" and (name.startswith(task + "_") or name == task + ".yaml"):
            return script
    assert f"{folder}/train.py" in scripts, f"no script for {hparams} among {scripts}"
    return f"{folder}/train.py"


def _tiny_overrides(hparams, tiny_wav2vec2, tiny_bert, pretrained_ctc, corpora,
                    pretrained_a2w=None):
    """Local tiny stand-ins for the hub models, pre-trained folders and MUSAN named in a YAML."""
    text = open(os.path.join(REPO, hparams)).read()
    extra = []
    if re.search(r"^pretrained_a2w_folder: !PLACEHOLDER", text, re.M):
        size = "_cpu" if hparams.endswith("_cpu.yaml") else ""  # the A2W model of that size
        extra += [f"--pretrained_a2w_folder={pretrained_a2w['folders'][size]}",
                  f"--vocab_size={pretrained_a2w['vocab_size']}"]
    if re.search(r"^wav2vec2_hub:", text, re.M):
        extra += [f"--wav2vec2_hub={tiny_wav2vec2}", "--encoder_dim=32"]
    if re.search(r"^text_encoder_hub: bert", text, re.M):
        extra += [f"--text_encoder_hub={tiny_bert}", "--text_encoder_dim=16"]
    if re.search(r"^pretrained_ctc_folder: !PLACEHOLDER", text, re.M):
        extra += [f"--pretrained_ctc_folder={pretrained_ctc}"]
    if re.search(r"^musan_folder: !PLACEHOLDER", text, re.M):
        extra += [f"--musan_folder={corpora['musan']}"]
    if hparams.startswith("recipes/a2w_asr_ser/") and "/pretrain" not in hparams:
        # An untrained attention decoder runs to its length limit, over 20-s turns too.
        extra += ["--max_duration=6"]
    if hparams.startswith("recipes/asr_fusion_coattention/"):
        # Attention over 16 heads of every MFCC frame of a 20-s turn, in random batches
        # of 20, is most of a debug run's time on CPU (121 s vs 25 s without such turns).
        extra += ["--max_duration=8"]
    return extra


def _yaml_conditions(hparams):
    text = open(os.path.join(REPO, hparams)).read()
    return re.search(r"^test_conditions: \[(.*)\]", text, re.M).group(1).split(", ")


def test_every_recipe_has_hparams():
    for task in ("joint", "asr", "ser"):  # Bansal et al.: three models, clean and noisy
        for encoder in ("w2v2", "crnn"):
            for variant in ("", "_noisy"):
                assert f"recipes/joint_asr_ser/hparams/{task}_{encoder}{variant}.yaml" in HPARAMS
    for hparams in HPARAMS:
        _script_for(hparams)  # every YAML has its script


@pytest.mark.parametrize("hparams", IEMOCAP_HPARAMS)
def test_debug_run(hparams, iemocap, corpora, tiny_wav2vec2, tiny_bert, pretrained_ctc,
                   pretrained_a2w, tmp_path):
    before = tree_hash(iemocap)
    out = tmp_path / "out"
    proc = run_recipe(_script_for(hparams), hparams, f"--data_folder={iemocap}",
                      f"--output_folder={out}", "--debug", "--fold_scheme=speaker10", "--fold=3",
                      *_tiny_overrides(hparams, tiny_wav2vec2, tiny_bert, pretrained_ctc, corpora,
                                       pretrained_a2w),
                      cwd=tmp_path)
    # All of a failed run's output: an intermittent failure needs more than a tail.
    assert proc.returncode == 0, (f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n"
                                  f"--- stderr\n{proc.stderr}")
    rows = json.load(open(out / "predictions.json"))
    assert rows and {"id", "speaker", "emo"} <= set(rows[0])
    assert {r["speaker"] for r in rows} == {"Ses02F"}  # speaker10 fold 3
    task = os.path.basename(hparams).split("_")[0]
    if task != "asr":  # every SER model predicts one of the 4 classes
        assert {r["emo_pred"] for r in rows} <= {"ang", "hap", "neu", "sad"}
    if task in ("asr", "joint"):  # and every ASR model a transcript of its reference
        assert all(isinstance(r["words_pred"], str) and r["words"] for r in rows)
    conditions = _yaml_conditions(hparams)
    assert [r["condition"] for r in rows[::len(rows) // len(conditions)]] == conditions
    assert "epoch: 1" in (out / "train_log.txt").read_text()
    assert tree_hash(iemocap) == before  # the corpus is read-only to recipes too


def _epochs(log_path):
    return [int(m) for m in re.findall(r"^epoch: (\d+)\b", open(log_path).read(), re.M)]


@pytest.mark.parametrize("script,hparams", [
    ("recipes/joint_asr_ser/train_ser.py", "recipes/joint_asr_ser/hparams/ser_crnn.yaml"),
    ("recipes/joint_asr_ser/train_joint.py", "recipes/joint_asr_ser/hparams/joint_crnn.yaml"),
    ("recipes/asr_fusion_coattention/train.py",
     "recipes/asr_fusion_coattention/hparams/full_hierarchical_crnn.yaml"),
    ("recipes/a2w_asr_ser/train.py", "recipes/a2w_asr_ser/hparams/asr_ser_cpu.yaml"),
])
def test_killed_run_resumes_from_last_checkpoint(script, hparams, iemocap, corpora,
                                                 pretrained_ctc, pretrained_a2w, tmp_path):
    """Kill a run during epoch 2 (after epoch 1's checkpoint), rerun: epoch 1 is not redone."""
    out = tmp_path / "out"
    args = [script, hparams, f"--data_folder={iemocap}", f"--output_folder={out}",
            "--number_of_epochs=3", "--max_duration=6",
            *[o for o in _tiny_overrides(hparams, None, None, pretrained_ctc, corpora, pretrained_a2w)
              if not o.startswith("--max_duration")]]
    console = tmp_path / "console.txt"
    with open(console, "w") as sink:
        proc = subprocess.Popen([sys.executable, *[os.path.join(REPO, a) for a in args[:2]],
                                 *args[2:]], cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT)
    log = out / "train_log.txt"
    deadline = time.time() + 300
    # SpeechBrain writes CKPT.yaml before the parameter files: wait until the epoch-1
    # checkpoint is complete (logged before epoch 2 starts), then kill during epoch 2.
    while time.time() < deadline and "Going into epoch 2" not in console.read_text():
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _epochs(log) == [1]
    assert not (out / "predictions.json").exists()  # it really was cut short

    done = run_recipe(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _epochs(log) == [1, 2, 3]  # resumed at epoch 2, epoch 1 trained once
    assert (out / "predictions.json").exists()


def test_recipe_with_wrong_data_folder_fails_clearly(tmp_path):
    proc = run_recipe("recipes/joint_asr_ser/train_ser.py", "recipes/joint_asr_ser/hparams/ser_crnn.yaml",
                      f"--data_folder={tmp_path}/nowhere", f"--output_folder={tmp_path}/out",
                      f"--pretrained_ctc_folder={tmp_path}/unused", "--debug", cwd=tmp_path)
    assert proc.returncode != 0
    assert f"IEMOCAP folder not found: {tmp_path}/nowhere" in proc.stdout + proc.stderr
    assert not (tmp_path / "out" / "predictions.json").exists()


def test_clean_model_evaluated_under_noise_reports_each_condition(corpora, pretrained_ctc,
                                                                 tmp_path):
    out = tmp_path / "out"
    args = [f"--data_folder={corpora['iemocap']}", f"--output_folder={out}", "--debug",
            "--test_conditions=[clean,babble_5]", f"--pretrained_ctc_folder={pretrained_ctc}"]
    proc = run_recipe("recipes/joint_asr_ser/train_ser.py", "recipes/joint_asr_ser/hparams/ser_crnn.yaml",
                      *args, cwd=tmp_path)
    assert proc.returncode != 0
    assert "need --musan_folder" in proc.stdout + proc.stderr
    proc = run_recipe("recipes/joint_asr_ser/train_ser.py", "recipes/joint_asr_ser/hparams/ser_crnn.yaml",
                      *args, f"--musan_folder={corpora['musan']}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.load(open(out / "predictions.json"))
    by_condition = {c: sorted(r["id"] for r in rows if r["condition"] == c)
                    for c in ("clean", "babble_5")}
    assert by_condition["clean"] and by_condition["clean"] == by_condition["babble_5"]
    noisy = json.load(open(out / "noisy_test" / "babble_5.json"))
    assert set(noisy) == set(json.load(open(out / "test.json")))
    assert (tmp_path / "musan_prep" / "speech_test.csv").exists()  # shared by the folds


# One cheap YAML per training script: the optimizer is built by the script, not the YAML.
OPTIMIZER_CHECKS = {
    "recipes/joint_asr_ser/train_ser.py": "recipes/joint_asr_ser/hparams/ser_crnn.yaml",
    "recipes/joint_asr_ser/train_asr.py": "recipes/joint_asr_ser/hparams/asr_crnn.yaml",
    "recipes/joint_asr_ser/train_joint.py": "recipes/joint_asr_ser/hparams/joint_crnn.yaml",
    "recipes/joint_asr_ser/pretrain_ctc.py": "recipes/joint_asr_ser/hparams/pretrain_ctc_crnn.yaml",
    "recipes/cornn/train.py": "recipes/cornn/hparams/wo_bilstm.yaml",
    "recipes/e_transformer/train.py": "recipes/e_transformer/hparams/base7.yaml",
    "recipes/asr_fusion_coattention/train.py":
        "recipes/asr_fusion_coattention/hparams/full_hierarchical_crnn.yaml",
    "recipes/a2w_asr_ser/train.py": "recipes/a2w_asr_ser/hparams/asr_ser_cpu.yaml",
    "recipes/a2w_asr_ser/pretrain_a2w.py": "recipes/a2w_asr_ser/hparams/pretrain_a2w_cpu.yaml",
}


def test_every_training_script_has_an_optimizer_check():
    assert set(SCRIPTS) == set(OPTIMIZER_CHECKS)


@pytest.mark.parametrize("script,hparams", sorted(OPTIMIZER_CHECKS.items()))
def test_one_epoch_updates_the_model_through_an_optimizer(script, hparams, corpora,
                                                          pretrained_ctc, pretrained_a2w, tmp_path):
    """A script that builds its Brain without an optimizer would train nothing, silently."""
    import torch

    out = tmp_path / "out"
    if "pretrain" in script:
        data = [f"--data_folder={corpora['librispeech']}"]
    else:
        data = [f"--data_folder={corpora['iemocap']}", "--max_duration=4",
                "--fold_scheme=speaker10", "--fold=3"]
    data += [o for o in _tiny_overrides(hparams, None, None, pretrained_ctc, corpora, pretrained_a2w)
             if not o.startswith("--max_duration")]
    if script.endswith("pretrain_a2w.py"):  # the word model of the tiny corpus
        data.append(f"--vocab_size={pretrained_a2w['vocab_size']}")
    proc = run_recipe(script, hparams, *data, f"--output_folder={out}", "--number_of_epochs=1",
                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = sorted(glob.glob(str(out / "save" / "CKPT*" / "*optimizer.ckpt")))
    assert saved
    for path in saved:
        assert torch.load(path, map_location="cpu")["state"]  # Adam took steps


# Runs a recipe script with torch.save slowed down on the second checkpoint's
# classifier file (after CKPT.yaml and the files before it are written), so that a
# test can kill the run in the middle of a save.
SLOW_SECOND_SAVE = """
import runpy, sys, time, torch
real_save, calls = torch.save, []
def slow_save(obj, f, *args, **kwargs):
    if str(f).endswith("classifier.ckpt"):
        calls.append(f)
        if len(calls) == 2:
            print("SLOW SAVE STARTED", flush=True)
            time.sleep(300)
    return real_save(obj, f, *args, **kwargs)
torch.save = slow_save
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_run_killed_during_a_save_resumes_from_the_last_complete_checkpoint(iemocap,
                                                                          tmp_path):
    out = tmp_path / "out"
    args = ["recipes/cornn/train.py", "recipes/cornn/hparams/wo_bilstm.yaml",
            f"--data_folder={iemocap}", f"--output_folder={out}", "--max_duration=4",
            "--number_of_epochs=3"]  # not --debug: it checkpoints into a temporary folder
    wrapper = tmp_path / "slow_save.py"
    wrapper.write_text(SLOW_SECOND_SAVE)
    console = tmp_path / "console.txt"
    with open(console, "w") as sink:
        proc = subprocess.Popen([sys.executable, str(wrapper), *[os.path.join(REPO, a)
                                                                 for a in args[:2]], *args[2:]],
                                cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while time.time() < deadline and "SLOW SAVE STARTED" not in console.read_text():
        assert proc.poll() is None, console.read_text()[-3000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # killed while epoch 2's checkpoint is written
    proc.wait()
    assert _epochs(out / "train_log.txt") == [1, 2]

    done = run_recipe(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    # Epoch 2's checkpoint never became visible: the run resumed after epoch 1.
    assert _epochs(out / "train_log.txt") == [1, 2, 2, 3]
    assert (out / "predictions.json").exists()


def test_every_recipe_saves_atomic_checkpoints():
    for hparams in HPARAMS:
        text = open(os.path.join(REPO, hparams)).read()
        assert re.search(r"^checkpointer: !new:speechbrain_ext\.checkpoints\.AtomicCheckpointer",
                         text, re.M), hparams
