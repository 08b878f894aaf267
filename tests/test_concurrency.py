"""Preparation shared by the folds of a CV run (the MUSAN pools) or by the models of a study
(one noisy test matrix per fold) stays whole when two processes run it at once (two jobs
of a cluster job array, or the models of ``study.py --jobs 3``, start together)."""

import json
import multiprocessing
import os
import time

import pytest

import data_prep.musan_prepare as musan_prepare
import data_prep.noisy_testsets as noisy_testsets
from data_prep.iemocap_prepare import prepare_iemocap
from speechbrain_ext.files import write_json_atomic

FORK = multiprocessing.get_context("fork")  # the children inherit the patched module


def _run_together(procs, failures):
    """Start the processes, wait for them; each must end well and report no error."""
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert failures.empty(), failures.get()


def _prepare_after(barrier, musan, out, failures):
    barrier.wait()  # both processes start preparing at the same moment
    try:
        musan_prepare.prepare_musan(musan, out)
    except Exception as err:  # reported to the parent, which fails the test
        failures.put(repr(err))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_two_processes_prepare_the_shared_musan_pools_once(corpora, tmp_path, monkeypatch):
    reference = musan_prepare.prepare_musan(corpora["musan"], str(tmp_path / "reference"))
    scans = FORK.Value("i", 0)
    real_scan = musan_prepare._scan_file

    def slow_counted_scan(path):  # long enough that the two preparations would overlap
        with scans.get_lock():
            scans.value += 1
        time.sleep(0.02)
        return real_scan(path)

    monkeypatch.setattr(musan_prepare, "_scan_file", slow_counted_scan)
    out = str(tmp_path / "cv" / "musan_prep")
    barrier, failures = FORK.Barrier(2), FORK.Queue()
    procs = [FORK.Process(target=_prepare_after, args=(barrier, corpora["musan"], out, failures))
             for _ in range(2)]
    _run_together(procs, failures)
    n_files = sum(len(open(path).readlines()) - 1
                  for pools in reference.values() for path in pools.values())
    assert scans.value == n_files  # one process prepared, the other waited and reused it
    for pools in reference.values():
        for path in pools.values():
            assert open(os.path.join(out, os.path.basename(path))).read() == open(path).read()
    assert sorted(os.listdir(out)) == sorted(os.listdir(tmp_path / "reference"))  # no .tmp


def _write_many(barrier, path, value, failures):
    barrier.wait()
    try:
        for _ in range(300):
            write_json_atomic(path, {"writer": value, "payload": list(range(2000))})
    except Exception as err:
        failures.put(repr(err))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_two_processes_writing_one_json_file_leave_one_whole_file(tmp_path):
    path = str(tmp_path / "summary.json")
    barrier, failures = FORK.Barrier(2), FORK.Queue()
    procs = [FORK.Process(target=_write_many, args=(barrier, path, k, failures)) for k in (1, 2)]
    _run_together(procs, failures)
    assert json.load(open(path))["writer"] in (1, 2)
    assert os.listdir(tmp_path) == ["summary.json"]


def _build_matrix_after(barrier, kwargs, mixes, failures):
    """Build the matrix with a slow, counted mixer (long enough that two builds overlap)."""
    real_mix = noisy_testsets.MusanMixer.mix

    def slow_counted_mix(self, *args, **options):
        with mixes.get_lock():
            mixes.value += 1
        time.sleep(0.05)
        return real_mix(self, *args, **options)

    noisy_testsets.MusanMixer.mix = slow_counted_mix
    barrier.wait()
    try:
        noisy_testsets.build_noisy_testsets(**kwargs)
    except Exception as err:
        failures.put(repr(err))


def test_two_models_building_one_shared_test_matrix_build_it_once(corpora, tmp_path):
    """The models of a study share one noisy test matrix per fold and start together."""
    data = prepare_iemocap(corpora["iemocap"], str(tmp_path / "prep"))
    csvs = str(tmp_path / "musan_prep")
    musan_prepare.prepare_musan(corpora["musan"], csvs)
    kwargs = {"manifest": data, "noise_csvs": csvs, "limit": 6,
              "conditions": ["clean", "noise_5", "babble_15"],
              "replacements": {"data_root": corpora["iemocap"]}}
    reference = noisy_testsets.build_noisy_testsets(out=str(tmp_path / "reference"), **kwargs)
    # spawn, not fork: torch's thread pool, already used here, does not survive a fork
    spawn = multiprocessing.get_context("spawn")
    out = str(tmp_path / "study" / "noisy_test" / "fold1")
    barrier, mixes, failures = spawn.Barrier(2), spawn.Value("i", 0), spawn.Queue()
    procs = [spawn.Process(target=_build_matrix_after,
                           args=(barrier, dict(kwargs, out=out), mixes, failures))
             for _ in range(2)]
    _run_together(procs, failures)
    assert mixes.value == 6 * 2  # one process mixed 6 utterances x 2 noisy conditions
    for condition, path in reference.items():
        assert open(os.path.join(out, f"{condition}.json")).read() == open(path).read()
    assert sorted(os.listdir(out)) == sorted(os.listdir(tmp_path / "reference"))
