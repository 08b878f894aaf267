"""The training benchmark's arithmetic, on hand-made batches and records."""

import importlib.util
import os
import sys

import pytest
import torch
from speechbrain.dataio.batch import PaddedBatch

from conftest import REPO

spec = importlib.util.spec_from_file_location(
    "training_throughput", os.path.join(REPO, "benchmarks", "training_throughput.py"))
throughput = importlib.util.module_from_spec(spec)
spec.loader.exec_module(throughput)


def test_audio_seconds_and_padded_share_of_a_batch():
    # 2 s and 1 s of 16-kHz audio padded to 2 s: 3 s of audio, a quarter padding.
    batch = PaddedBatch([{"sig": torch.ones(32000)}, {"sig": torch.ones(16000)}])
    assert throughput._audio_and_padding(batch) == pytest.approx((3.0, 0.25))
    # Cached features: 10-ms frames (300 and 150 frames).
    batch = PaddedBatch([{"feats": torch.ones(300, 40)}, {"feats": torch.ones(150, 40)}])
    assert throughput._audio_and_padding(batch) == pytest.approx((4.5, 0.25))


def test_time_split_of_an_epoch():
    # Epoch 2 of a record: 10 s of stage, batches take 8 s (forward 3, optimizer 1).
    batch = {"fit_batch": 4.0, "forward": 1.5, "optimizer": 0.5, "audio_s": 50.0,
             "padded_share": 0.1}
    record = {"batches": [dict(batch, audio_s=999.0)] + [batch, dict(batch, padded_share=0.3)],
              "train_stages": [{"s": 99.0, "first": 0, "last": 1},
                               {"s": 10.0, "first": 1, "last": 3}],
              "peak_rss_mb_after_train": 900.0, "peak_rss_mb_at_exit": 1000.0}
    figures = throughput.summarize(record, epoch=2)
    assert figures["audio_s_per_s"] == pytest.approx(10.0)
    assert figures["padded_share"] == pytest.approx(0.2)
    assert figures["loading_share"] == pytest.approx(0.2)
    assert figures["forward_share"] == pytest.approx(0.3)
    assert figures["backward_share"] == pytest.approx(0.4)
    assert figures["optimizer_share"] == pytest.approx(0.1)


def _corpus_root(tmp_path):
    for corpus in ("IEMOCAP_full_release", "LibriSpeech"):
        (tmp_path / "data" / corpus).mkdir(parents=True)
    return str(tmp_path / "data")


def test_a_configuration_name_that_does_not_exist_is_an_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        throughput.main(["--data_root", _corpus_root(tmp_path), "--out", str(tmp_path / "out"),
                         "--only", "cornn"])  # the configuration is cornn/cornn
    assert stop.value.code == 2
    assert "no configuration named cornn" in capsys.readouterr().err


def test_only_keeps_the_comma_inside_a_variants_name():
    names = throughput.only_names("joint_asr_ser/joint_crnn,joint_asr_ser/joint_crnn, random "
                                  "batches,cornn/cornn, feature cache")
    assert names == {"joint_asr_ser/joint_crnn", "joint_asr_ser/joint_crnn, random batches",
                     "cornn/cornn, feature cache"}
    assert names <= {c[0] for c in throughput.CONFIGS}


def test_no_repeats_reports_the_fold_runner_memory_alone(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "fold_runner.json").write_text('{"fold_runner_mb": 715.2, "largest_child_mb": 2334.1}')
    argv = ["--data_root", _corpus_root(tmp_path), "--out", str(out), "--repeats", "0",
            "--report_only", "--only", "cornn/cornn, feature cache"]
    monkeypatch.setattr(sys, "argv", ["training_throughput.py", *argv])
    throughput.main(argv)
    report = (out / "report.md").read_text()
    # The command as a shell reads it back: a variant's name is one argument.
    assert "--only 'cornn/cornn, feature cache'" in report.splitlines()[1]
    assert "itself 715 MB, its training process 2334 MB at peak" in report
    assert "| configuration |" not in report and "interleaved repeats" not in report


def test_the_gpu_profile_needs_a_cuda_device(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        "w2v2_training_speed", os.path.join(REPO, "benchmarks", "w2v2_training_speed.py"))
    speed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(speed)
    with pytest.raises(SystemExit) as stop:  # before any model is built
        speed.main(["--data_folder", str(tmp_path), "--device", "cpu", "--profile"])
    assert stop.value.code == 2
    assert "--profile measures CUDA kernels" in capsys.readouterr().err
