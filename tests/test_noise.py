"""MUSAN preparation, SNR mixing, on-the-fly noisy training and the fixed test matrix."""

import csv
import json
import os
import random
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import REPO, tree_hash
from data_prep.iemocap_prepare import prepare_iemocap
from data_prep.musan_prepare import MUSANPrepError, prepare_musan
from data_prep.noisy_testsets import CONDITIONS, build_noisy_testsets
from speechbrain_ext.noise import (AddMusanNoise, MusanMixer, NoisePool, SilentSignalError,
                                   measure_snr, scale_to_snr, signal_power)


@pytest.fixture(scope="module")
def musan(corpora):
    return corpora["musan"]


@pytest.fixture(scope="module")
def musan_csvs(musan, tmp_path_factory):
    out = tmp_path_factory.mktemp("musan_prep")
    return prepare_musan(musan, str(out)), str(out)


@pytest.fixture(scope="module")
def data_json(iemocap, tmp_path_factory):
    return prepare_iemocap(iemocap, str(tmp_path_factory.mktemp("iemocap_prep")))


def _ids(csv_path):
    with open(csv_path, newline="") as f:
        return [row["ID"] for row in csv.DictReader(f)]


def _copy_musan(musan, tmp_path):
    copy = tmp_path / "musan"
    shutil.copytree(musan, copy)
    return copy


# --- preparation -----------------------------------------------------------------------

def test_pools_are_disjoint_and_cover_every_file(musan, musan_csvs):
    csvs, _ = musan_csvs
    for kind, folder in (("noise", "noise"), ("music", "music"), ("speech", "speech")):
        train, test = _ids(csvs[kind]["train"]), _ids(csvs[kind]["test"])
        on_disk = {n[:-4] for _, _, names in os.walk(os.path.join(musan, folder))
                   for n in names if n.endswith(".wav")}
        assert not set(train) & set(test)
        assert set(train) | set(test) == on_disk
        assert len(test) >= (3 if kind == "speech" else 1)  # babble needs 3 talkers


def test_csv_is_addnoise_format(musan_csvs):
    csvs, _ = musan_csvs
    with open(csvs["music"]["train"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["ID", "duration", "wav", "wav_format", "wav_opts"]
    for row in rows:
        info = sf.info(row["wav"])
        assert abs(float(row["duration"]) - info.frames / info.samplerate) < 1e-3
        assert row["wav_format"] == "wav"


def test_pool_of_a_file_is_stable_when_files_are_added(musan, tmp_path):
    copy = _copy_musan(musan, tmp_path)
    noise_dir = copy / "noise" / "free-sound"

    def add_noise_files(first, count):
        for i in range(first, first + count):
            x = np.random.default_rng(i).normal(0, 0.1, 16000).astype(np.float32)
            sf.write(noise_dir / f"noise-free-sound-9{i:03d}.wav", x, 16000)

    add_noise_files(0, 40)  # large enough that no pool needs topping up
    before = prepare_musan(str(copy), str(tmp_path / "a"))
    add_noise_files(40, 40)
    after = prepare_musan(str(copy), str(tmp_path / "b"))
    for pool in ("train", "test"):
        assert set(_ids(before["noise"][pool])) < set(_ids(after["noise"][pool]))


def test_prep_and_matrix_leave_musan_untouched(musan, data_json, iemocap, tmp_path):
    before = tree_hash(musan)
    prepare_musan(musan, str(tmp_path / "prep"), skip_if_done=False)
    build_noisy_testsets(data_json, str(tmp_path / "prep"), str(tmp_path / "matrix"),
                         replacements={"data_root": iemocap}, limit=3)
    assert tree_hash(musan) == before


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(MUSANPrepError, match="does not exist"):
        prepare_musan(str(tmp_path / "nowhere"), str(tmp_path / "out"))
    (tmp_path / "musan" / "noise").mkdir(parents=True)
    with pytest.raises(MUSANPrepError, match="missing folder .*music"):
        prepare_musan(str(tmp_path / "musan"), str(tmp_path / "out"))


def test_empty_type_is_a_clear_error(musan, tmp_path):
    copy = _copy_musan(musan, tmp_path)
    for wav in (copy / "music").rglob("*.wav"):
        wav.unlink()
    with pytest.raises(MUSANPrepError, match="no .wav file under .*music"):
        prepare_musan(str(copy), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_silent_noise_file_is_a_clear_error_and_can_be_excluded(musan, tmp_path):
    copy = _copy_musan(musan, tmp_path)
    silent = copy / "noise" / "sound-bible" / "noise-sound-bible-0099.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    with pytest.raises(MUSANPrepError, match="silent audio file .*noise-sound-bible-0099"):
        prepare_musan(str(copy), str(tmp_path / "out"))
    csvs = prepare_musan(str(copy), str(tmp_path / "out"), exclude=["noise-sound-bible-0099"])
    assert "noise-sound-bible-0099" not in _ids(csvs["noise"]["train"]) + _ids(
        csvs["noise"]["test"])


def test_cli_reports_errors_with_exit_code_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "data_prep.musan_prepare", "--musan_folder",
                           str(tmp_path / "nowhere"), "--output_folder", str(tmp_path / "o")],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: MUSAN folder") and "Traceback" not in proc.stderr


# --- mixing ------------------------------------------------------------------------------

@pytest.mark.parametrize("noise_type", ["noise", "music", "babble"])
@pytest.mark.parametrize("snr", [5.0, 15.0, 35.0])
def test_mixer_hits_the_snr(musan_csvs, noise_type, snr):
    csvs, _ = musan_csvs
    mixer = MusanMixer(csvs["noise"]["train"], csvs["music"]["train"], csvs["speech"]["train"])
    speech = torch.from_numpy(np.random.default_rng(0).normal(0, 0.05, 40000).astype(np.float32))
    mixture, record = mixer.mix(speech, noise_type, snr, random.Random(1))
    assert abs(measure_snr(speech, mixture - speech) - snr) < 0.1
    assert record["noise_type"] == noise_type and record["snr_db"] == snr


@pytest.mark.parametrize("snr", [5.0, 15.0, 35.0])
def test_training_augmentation_hits_the_snr_on_valid_samples(musan_csvs, snr):
    csvs, _ = musan_csvs
    augment = AddMusanNoise(csvs["noise"]["train"], csvs["music"]["train"],
                            csvs["speech"]["train"], snr_low=snr, snr_high=snr)
    torch.manual_seed(0)
    clean = 0.05 * torch.randn(6, 32000)
    lengths = torch.tensor([1.0, 0.9, 0.75, 0.6, 0.5, 0.3])
    for i, rel in enumerate(lengths.tolist()):
        clean[i, int(round(rel * 32000)):] = 0
    noisy = augment(clean, lengths)
    for i, rel in enumerate(lengths.tolist()):
        n = int(round(rel * 32000))
        assert abs(measure_snr(clean[i, :n], noisy[i, :n] - clean[i, :n]) - snr) < 0.1
        assert torch.all(noisy[i, n:] == 0)  # padding is not noise


def test_training_augmentation_draws_every_type_from_the_train_pool(musan_csvs):
    csvs, _ = musan_csvs
    augment = AddMusanNoise(csvs["noise"]["train"], csvs["music"]["train"],
                            csvs["speech"]["train"])
    augment(torch.randn(1, 1600), torch.ones(1))  # builds the mixer
    seen, rng = set(), random.Random(0)
    test_ids = set().union(*(_ids(csvs[k]["test"]) for k in ("noise", "music", "speech")))
    for _ in range(30):
        noise_type = rng.choice(augment.noise_types)
        _, record = augment.mixer.mix(torch.randn(8000), noise_type, 10.0, rng)
        seen.add(noise_type)
        assert not set(record["noise_ids"]) & test_ids
    assert seen == {"noise", "music", "babble"}


def test_noise_prob_zero_leaves_the_batch_clean(musan_csvs):
    csvs, _ = musan_csvs
    augment = AddMusanNoise(csvs["noise"]["train"], noise_types=["noise"], noise_prob=0.0)
    clean = torch.randn(3, 8000)
    assert torch.equal(augment(clean, torch.ones(3)), clean)


@pytest.fixture(scope="module")
def all_speech_csv(musan_csvs, tmp_path_factory):
    """Both speech pools in one CSV: enough talkers for 7-talker babble on the tiny corpus."""
    csvs, _ = musan_csvs
    lines = [open(csvs["speech"][p]).read().splitlines() for p in ("train", "test")]
    path = tmp_path_factory.mktemp("speech") / "all_speech.csv"
    path.write_text("\n".join(lines[0] + lines[1][1:]) + "\n")
    return str(path)


@pytest.mark.parametrize("count", [3, 5, 7])
def test_babble_has_the_stated_number_of_talkers(all_speech_csv, count):
    mixer = MusanMixer(speech_csv=all_speech_csv, babble_sources=(count, count))
    noise, record = mixer.make_noise("babble", 24000, random.Random(count))
    assert len(record["noise_ids"]) == len(set(record["noise_ids"])) == count
    # Rebuild the babble from the record: the sum of the named talkers at equal power.
    pool = mixer.pools["babble"]
    index = {row["ID"]: i for i, row in enumerate(pool.rows)}
    rebuilt = sum(s / signal_power(s) ** 0.5 for s in (
        pool.read(index[i], o, 24000) for i, o in zip(record["noise_ids"],
                                                      record["noise_offsets"])))
    assert torch.allclose(noise, rebuilt.float(), atol=1e-5)


def test_babble_draws_between_3_and_7_talkers(all_speech_csv):
    mixer = MusanMixer(speech_csv=all_speech_csv)
    assert len(mixer.pools["babble"]) >= 8
    counts = {len(mixer.make_noise("babble", 4000, random.Random(s))[1]["noise_ids"])
              for s in range(60)}
    assert counts == {3, 4, 5, 6, 7}


def test_short_noise_is_looped(tmp_path):
    tone = np.sin(np.arange(4000) / 5.0).astype(np.float32) * 0.1
    sf.write(tmp_path / "short.wav", tone, 16000, subtype="FLOAT")
    (tmp_path / "pool.csv").write_text(f"ID,duration,wav\nshort,0.25,{tmp_path}/short.wav\n")
    segment = NoisePool(str(tmp_path / "pool.csv")).read(0, 1000, 10000)
    assert len(segment) == 10000
    assert torch.allclose(segment[:3000], torch.from_numpy(tone[1000:]))
    assert torch.allclose(segment[3000:7000], torch.from_numpy(tone))


def test_stereo_8khz_noise_is_mixed_down_and_resampled(tmp_path):
    t = np.arange(8000) / 8000
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t)], 1) * 0.2
    sf.write(tmp_path / "stereo.wav", stereo.astype(np.float32), 8000)
    (tmp_path / "pool.csv").write_text(f"ID,duration,wav\nstereo,1.0,{tmp_path}/stereo.wav\n")
    segment = NoisePool(str(tmp_path / "pool.csv")).read(0, 0, 16000)
    assert segment.shape == (16000,)
    spectrum = np.abs(np.fft.rfft(segment.numpy()))
    assert abs(np.argmax(spectrum) - 440) <= 1  # 1 Hz bins at 16 kHz over 1 s


def test_silent_signals_raise_or_are_skipped_never_nan(tmp_path):
    sf.write(tmp_path / "silent.wav", np.zeros(8000, np.float32), 16000)
    (tmp_path / "pool.csv").write_text(f"ID,duration,wav\nsilent,0.5,{tmp_path}/silent.wav\n")
    mixer = MusanMixer(noise_csv=str(tmp_path / "pool.csv"))
    with pytest.raises(SilentSignalError, match="silent.wav is silent"):
        mixer.mix(torch.randn(4000), "noise", 5.0, random.Random(0))
    with pytest.raises(SilentSignalError, match="speech is silent"):
        scale_to_snr(torch.zeros(100), torch.randn(100), 5.0)
    augment = AddMusanNoise(noise_csv=str(tmp_path / "pool.csv"), noise_types=["noise"])
    silent_batch = torch.zeros(2, 4000)
    out = augment(silent_batch, torch.ones(2))  # silent utterances are left as they are
    assert torch.equal(out, silent_batch) and not torch.isnan(out).any()


# --- the fixed test matrix ----------------------------------------------------------------

@pytest.fixture(scope="module")
def matrix(data_json, musan_csvs, iemocap, tmp_path_factory):
    _, csv_folder = musan_csvs
    out = str(tmp_path_factory.mktemp("matrix"))
    paths = build_noisy_testsets(data_json, csv_folder, out, seed=3,
                                 replacements={"data_root": iemocap}, limit=12)
    return paths, out


def test_matrix_has_seven_conditions_for_every_utterance(matrix, data_json):
    paths, out = matrix
    assert list(paths) == ["clean", "noise_15", "noise_5", "music_15", "music_5",
                           "babble_15", "babble_5"]
    ids = sorted(json.load(open(data_json)))[:12]
    for condition, path in paths.items():
        entries = json.load(open(path))
        assert sorted(entries) == ids
        for uid, entry in entries.items():
            assert entry["condition"] == condition
            if condition != "clean":
                assert os.path.isfile(os.path.join(out, condition, uid + ".wav"))
                assert entry["noise_type"] == CONDITIONS[condition][0]
                assert len(entry["noise_ids"]) == len(entry["noise_offsets"])
                assert len(entry["noise_ids"]) == 1 or entry["noise_type"] == "babble"


def test_matrix_uses_only_the_test_pool(matrix, musan_csvs):
    csvs, _ = musan_csvs
    paths, _ = matrix
    test_ids = set().union(*(_ids(csvs[k]["test"]) for k in ("noise", "music", "speech")))
    for condition in paths:
        for entry in json.load(open(paths[condition])).values():
            assert set(entry.get("noise_ids", [])) <= test_ids


def test_matrix_files_have_the_target_snr(matrix, iemocap):
    paths, out = matrix
    for condition in paths:
        if condition == "clean":
            continue
        for uid, entry in json.load(open(paths[condition])).items():
            noisy, _ = sf.read(os.path.join(out, condition, uid + ".wav"), dtype="float64")
            clean, _ = sf.read(entry["clean_wav"].replace("{data_root}", iemocap),
                               dtype="float64")
            speech = entry["gain"] * clean
            snr = 10 * np.log10(np.mean(speech ** 2) / np.mean((noisy - speech) ** 2))
            # Against the condition's name (noise_5: noise at 5 dB), not only the record.
            noise_type, named_snr = condition.split("_")
            assert entry["noise_type"] == noise_type
            assert abs(snr - float(named_snr)) < 0.1, (condition, uid, snr)
            assert entry["snr_db"] == float(named_snr)


def test_matrix_is_byte_identical_when_rebuilt(matrix, data_json, musan_csvs, iemocap,
                                               tmp_path):
    paths, out = matrix
    _, csv_folder = musan_csvs
    build_noisy_testsets(data_json, csv_folder, str(tmp_path / "again"), seed=3,
                         replacements={"data_root": iemocap}, limit=12)
    assert tree_hash(str(tmp_path / "again")) == tree_hash(out)
    build_noisy_testsets(data_json, csv_folder, str(tmp_path / "seed4"), seed=4,
                         replacements={"data_root": iemocap}, limit=12)
    assert tree_hash(str(tmp_path / "seed4")) != tree_hash(out)  # the seed matters


def test_an_utterance_gets_the_same_noise_in_any_manifest(matrix, data_json, musan_csvs,
                                                          iemocap, tmp_path):
    """A fold's test.json yields the same files as the whole corpus."""
    paths, out = matrix
    _, csv_folder = musan_csvs
    data = json.load(open(data_json))
    subset = {uid: data[uid] for uid in sorted(data)[5:8]}
    (tmp_path / "fold.json").write_text(json.dumps(subset))
    build_noisy_testsets(str(tmp_path / "fold.json"), csv_folder, str(tmp_path / "fold"),
                         seed=3, conditions=["music_5"], replacements={"data_root": iemocap})
    for uid in subset:
        with open(tmp_path / "fold" / "music_5" / f"{uid}.wav", "rb") as a, \
                open(os.path.join(out, "music_5", f"{uid}.wav"), "rb") as b:
            assert a.read() == b.read()


def test_matrix_cli(data_json, musan_csvs, iemocap, tmp_path):
    _, csv_folder = musan_csvs
    proc = subprocess.run(
        [sys.executable, "-m", "data_prep.noisy_testsets", "--manifest", data_json,
         "--noise_csvs", csv_folder, "--out", str(tmp_path / "m"), "--data_root", iemocap,
         "--conditions", "clean,noise_5"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert len(json.load(open(tmp_path / "m" / "noise_5.json"))) == len(json.load(
        open(data_json)))
    proc = subprocess.run(
        [sys.executable, "-m", "data_prep.noisy_testsets", "--manifest", data_json,
         "--noise_csvs", str(tmp_path / "nowhere"), "--out", str(tmp_path / "n")],
        cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and "run data_prep.musan_prepare first" in proc.stderr
