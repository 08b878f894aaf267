"""Fold runner: per-fold output folders, resume at the first unfinished fold, summaries."""

import json
import os
import sys
import textwrap

import pytest

from speechbrain_ext import fold_runner

# A stand-in recipe: logs each call, fails once on fold 2 when FAIL_ONCE exists,
# writes predictions with a known accuracy per fold (fold k: k-1 errors of 4).
FAKE_RECIPE = textwrap.dedent('''
    import json, os, sys
    args = dict(a[2:].split("=", 1) for a in sys.argv[2:] if a.startswith("--"))
    fold, out = int(args["fold"]), args["output_folder"]
    log = os.path.join(os.path.dirname(out), "calls.log")
    open(log, "a").write(f"{fold} {args['fold_scheme']} {args.get('number_of_epochs')} "
                         f"{args.get('noisy_test_folder')}\\n")
    open(os.path.join(os.path.dirname(out), "nice.log"), "a").write(f"{os.nice(0)}\\n")
    fail = os.path.join(os.path.dirname(out), "FAIL_ONCE")
    if fold == 2 and os.path.exists(fail):
        os.remove(fail)
        sys.exit(3)
    os.makedirs(out, exist_ok=True)
    rows = [{"id": f"f{fold}u{i}", "emo": "ang" if i < 2 else "sad",
             "emo_pred": "hap" if i < fold - 1 else ("ang" if i < 2 else "sad")}
            for i in range(4)]
    json.dump(rows, open(os.path.join(out, "predictions.json"), "w"))
''')


@pytest.fixture
def fake(tmp_path):
    script = tmp_path / "fake_recipe.py"
    script.write_text(FAKE_RECIPE)
    hparams = tmp_path / "fake.yaml"
    hparams.write_text("seed: 1\n")
    return str(script), str(hparams), str(tmp_path / "cv")


def _calls(cv_folder):
    return [line.split()[0] for line in open(os.path.join(cv_folder, "calls.log"))]


def test_resume_at_first_unfinished_fold(fake, capsys):
    script, hparams, cv_folder = fake
    os.makedirs(cv_folder)
    open(os.path.join(cv_folder, "FAIL_ONCE"), "w").close()
    args = [script, hparams, "--folds", "session5", "--cv_folder", cv_folder,
            "--launcher", sys.executable, "--number_of_epochs=3"]
    assert fold_runner.main(args) == 1  # fold 2 failed
    assert "fold 2 failed" in capsys.readouterr().err
    assert os.path.exists(os.path.join(cv_folder, "fold1", "predictions.json"))
    assert not os.path.exists(os.path.join(cv_folder, "summary.json"))

    assert fold_runner.main(args) == 0
    assert _calls(cv_folder) == ["1", "2", "2", "3", "4", "5"]  # fold 1 not rerun
    line = open(os.path.join(cv_folder, "calls.log")).readline().split()
    assert line[1:] == ["session5", "3", "None"]  # scheme and overrides reach the recipe

    summary = json.load(open(os.path.join(cv_folder, "summary.json")))
    clean = summary["conditions"]["clean"]
    # fold k has k-1 errors of 4 -> WA 100, 75, 50, 25, 0
    assert [clean["per_fold"][str(k)]["WA"] for k in range(1, 6)] == [100, 75, 50, 25, 0]
    assert clean["mean"]["WA"] == pytest.approx(50.0)
    assert clean["std"]["WA"] == pytest.approx(39.528, abs=1e-3)  # sample std
    assert clean["pooled"]["WA"] == pytest.approx(50.0)
    assert summary["complete"] and summary["speaker_independent"]
    md = open(os.path.join(cv_folder, "summary.md")).read()
    assert "all folds" in md and "50.0 ± 39.5" in md
    assert os.path.getsize(os.path.join(cv_folder, "confusion.png")) > 0


def test_subset_is_named_and_summarize_only(fake, capsys):
    script, hparams, cv_folder = fake
    args = [script, hparams, "--folds", "speaker10", "--cv_folder", cv_folder,
            "--launcher", sys.executable, "--fold_ids", "1,3"]
    assert fold_runner.main(args) == 0
    out = capsys.readouterr().out
    assert "SUBSET: folds 1, 3 of 10" in out
    assert sorted(os.listdir(cv_folder)) == ["calls.log", "confusion.png", "fold1", "fold3",
                                             "nice.log", "summary.json", "summary.md"]
    assert fold_runner.main([script, hparams, "--folds", "speaker10", "--cv_folder", cv_folder,
                    "--summarize_only"]) == 0
    assert _calls(cv_folder) == ["1", "3"]


def test_fold_placeholder_in_an_override_names_the_fold(fake):
    script, hparams, cv_folder = fake
    assert fold_runner.main([script, hparams, "--folds", "session5", "--cv_folder", cv_folder,
                             "--launcher", sys.executable, "--fold_ids", "2,4",
                             "--noisy_test_folder=study/noisy_test_fold{fold}"]) == 0
    lines = [line.split() for line in open(os.path.join(cv_folder, "calls.log"))]
    assert [(line[0], line[3]) for line in lines] == [("2", "study/noisy_test_fold2"),
                                                      ("4", "study/noisy_test_fold4")]


def test_bad_fold_ids(fake):
    script, hparams, cv_folder = fake
    with pytest.raises(SystemExit):
        fold_runner.main([script, hparams, "--folds", "session5", "--fold_ids", "6",
                 "--cv_folder", cv_folder])


@pytest.mark.parametrize("jobs", [3, 2])
def test_run_many_lowers_the_priority_of_all_but_the_first_beyond_the_cores(
        fake, tmp_path, monkeypatch, jobs):
    """3 models on 2 cores: the first (the longest) at the caller's priority, the others
    at nice 2; as many jobs as cores: all at the caller's priority."""
    script, hparams, _ = fake
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    runs = {model: [script, hparams, "--folds", "session5", "--fold_ids", "1",
                    "--cv_folder", str(tmp_path / model), "--launcher", sys.executable]
            for model in ("joint", "asr", "ser")}
    assert fold_runner.run_many(runs, jobs=jobs) == []
    niceness = {model: int(open(tmp_path / model / "nice.log").read()) for model in runs}
    lower = 2 if jobs == 3 else 0
    assert niceness == {"joint": os.nice(0), "asr": os.nice(0) + lower,
                        "ser": os.nice(0) + lower}
    assert all((tmp_path / model / "summary.json").exists() for model in runs)


def test_run_many_summarises_each_model_in_the_calling_process(fake, tmp_path, monkeypatch):
    """Models run at once: each runner only runs its folds; the caller, which has imported
    the summary's modules once, writes every summary (pooled over the folds asked for)
    and adds it to the model's console log."""
    script, hparams, _ = fake
    written = []
    write_summary = fold_runner.write_summary
    monkeypatch.setattr(fold_runner, "write_summary",
                        lambda folder, summary: written.append(folder) or write_summary(
                            folder, summary))
    runs = {model: [script, hparams, "--folds", "session5", "--fold_ids", "1,3",
                    "--cv_folder", str(tmp_path / model), "--launcher", sys.executable]
            for model in ("joint", "ser")}
    assert fold_runner.run_many(runs, jobs=2) == []
    assert sorted(written) == [str(tmp_path / "joint"), str(tmp_path / "ser")]
    for model in runs:
        summary = json.load(open(tmp_path / model / "summary.json"))
        assert summary["folds"] == [1, 3]
        # folds 1 and 3: 0 and 2 errors of 4 utterances each
        assert summary["conditions"]["clean"]["pooled"]["WA"] == pytest.approx(75.0)
        log = (tmp_path / model / "cv_log.txt").read_text()
        assert "[fold_runner] summary written" not in log  # the runner wrote none
        assert "| clean |" in log
