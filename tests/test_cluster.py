"""A study as independent cluster jobs: ``--emit_commands`` writes one command per
(model, fold), the SLURM array script runs them (here two at once, sharing the CV
folder's MUSAN pools), and the summarize step collects them."""

import json
import os
import shlex
import subprocess
import sys

from conftest import REPO

SUBMIT = os.path.join(REPO, "tools", "slurm_submit.sh")
TASK = os.path.join(REPO, "tools", "slurm_fold.sbatch")


def test_fold_commands_run_as_two_array_tasks_at_once_then_summarize(corpora, tmp_path):
    cv, jobs = tmp_path / "cv", tmp_path / "jobs"
    emit = subprocess.run(
        [sys.executable, "-m", "speechbrain_ext.fold_runner", "recipes/cornn/train.py",
         "recipes/cornn/hparams/wo_bilstm.yaml", "--folds", "speaker10", "--fold_ids", "3,4",
         "--cv_folder", str(cv), "--emit_commands", str(jobs),
         f"--data_folder={corpora['iemocap']}", f"--musan_folder={corpora['musan']}",
         "--test_conditions=[clean,babble_5]", "--max_duration=4", "--number_of_epochs=1",
         f"--feature_cache_folder={tmp_path}/cache"],  # not the repository's results/
        cwd=REPO, capture_output=True, text=True)
    assert emit.returncode == 0, emit.stderr
    lines = (jobs / "commands.txt").read_text().splitlines()
    assert len(lines) == 2 and "--fold_ids 3 --no_summary" in lines[0]
    assert not cv.exists()  # emitting runs nothing

    dry = subprocess.run(["bash", SUBMIT, str(jobs), "--partition=gpu"], capture_output=True,
                         text=True, env=dict(os.environ, DRY_RUN="1"))
    assert dry.returncode == 0, dry.stderr
    assert f"--array=1-2 --output={jobs}/fold-%A_%a.out --partition=gpu {TASK}" in dry.stderr
    assert "--dependency=afterok:<array>" in dry.stderr and not cv.exists()

    env = dict(os.environ, OMP_NUM_THREADS="1")
    tasks = [subprocess.Popen(["bash", TASK, str(jobs)], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              env=dict(env, SLURM_ARRAY_TASK_ID=str(k))) for k in (1, 2)]
    outputs = [task.communicate(timeout=600)[0] for task in tasks]
    assert [task.returncode for task in tasks] == [0, 0], outputs
    for fold in (3, 4):
        rows = json.load(open(cv / f"fold{fold}" / "predictions.json"))
        assert {r["condition"] for r in rows} == {"clean", "babble_5"}
    assert not (cv / "summary.json").exists()  # an array task summarises nothing
    pools = sorted(p for p in os.listdir(cv / "musan_prep") if p.endswith(".csv"))
    assert len(pools) == 6 and not [p for p in os.listdir(cv / "musan_prep") if ".tmp" in p]

    local = subprocess.run(["bash", SUBMIT, str(jobs)], capture_output=True, text=True,
                           env=dict(env, LOCAL="1"), timeout=600)
    assert local.returncode == 0, local.stdout + local.stderr
    assert local.stdout.count("finished earlier, skipped") + local.stderr.count(
        "finished earlier, skipped") == 2  # the rerun skipped both finished folds
    summary = json.load(open(cv / "summary.json"))
    assert summary["folds"] == [3, 4]
    assert set(summary["conditions"]) == {"clean", "babble_5"}
    assert summary["conditions"]["clean"]["per_fold"].keys() == {"3", "4"}


def test_study_emits_prepare_array_and_summary(corpora, tmp_path):
    jobs, study = tmp_path / "jobs", tmp_path / "study"
    proc = subprocess.run(
        [sys.executable, "recipes/joint_asr_ser/study.py", "--encoder", "crnn",
         "--models", "joint,ser,asr", "--folds", "session5", "--fold_ids", "1,2",
         "--study_folder", str(study), f"--data_folder={corpora['iemocap']}",
         f"--librispeech_folder={corpora['librispeech']}", "--emit_commands", str(jobs),
         f"--musan_folder={corpora['musan']}", "--number_of_epochs=2"],
        cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = (jobs / "commands.txt").read_text().splitlines()
    assert len(lines) == 6  # 3 models x 2 folds
    assert all(f"--pretrained_ctc_folder={study}/pretrain_ctc/pretrained" in line
               for line in lines)
    # The three models of a fold share its MUSAN pools and its test matrix (the fold
    # runner puts the fold number in "{fold}").
    words = [shlex.split(line.split(" && ", 1)[1]) for line in lines]
    assert all(f"--musan_prep_folder={study}/shared/musan_prep" in w for w in words)
    assert all(f"--noisy_test_folder={study}/shared/noisy_test_session5_fold{{fold}}" in w
               for w in words)
    assert "pretrain_ctc.py" in (jobs / "prepare.sh").read_text()
    summarize = (jobs / "summarize.sh").read_text().splitlines()
    assert sum("--summarize_only" in line for line in summarize) == 3
    assert summarize[-1].endswith("--number_of_epochs=2 --tables_only")
    assert not study.exists()  # neither the pre-training nor any fold ran
    dry = subprocess.run(["bash", SUBMIT, str(jobs)], capture_output=True, text=True,
                         env=dict(os.environ, DRY_RUN="1"))
    assert "--array=1-6" in dry.stderr and "--dependency=afterok:<prepare>" in dry.stderr
