"""A --debug-trained fold of each recipe exports to a model folder that loads in a fresh
process (``from_hparams`` and ``foreign_class``) and predicts what the training
script's test stage wrote; the joint interfaces run their encoder once; audio of any
rate and channel count; clear errors; the command line."""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from conftest import REPO, run_recipe

# name: (script, hparams, the fixtures its overrides need)
MODELS = {
    "joint": ("recipes/joint_asr_ser/train_joint.py", "joint_crnn.yaml", ["ctc"]),
    "ser": ("recipes/joint_asr_ser/train_ser.py", "ser_crnn.yaml", ["ctc"]),
    "e_transformer": ("recipes/e_transformer/train.py", "e_transformer.yaml", []),
    "cornn": ("recipes/cornn/train.py", "cornn.yaml", []),
    "coattention": ("recipes/asr_fusion_coattention/train.py", "full_hierarchical_crnn.yaml",
                    ["ctc"]),
    "a2w": ("recipes/a2w_asr_ser/train.py", "asr_ser_cpu.yaml", ["a2w"]),
}
# The module each joint interface must run once per batch: the shared encoder.
SHARED_ENCODER = {"joint": "encoder", "coattention": "asr_encoder", "a2w": "asr_encoder"}


@pytest.fixture(scope="session")
def trained_fold(iemocap, pretrained_ctc, pretrained_a2w, tmp_path_factory):
    """``trained_fold(name)``: the output folder of a --debug run of ``MODELS[name]``
    (its checkpoints kept: --debug_persistently), trained once per session."""
    folds = {}

    def train(name):
        if name not in folds:
            script, hparams, needs = MODELS[name]
            out = tmp_path_factory.mktemp(f"fold_{name}")
            extra = []
            if "ctc" in needs:
                extra.append(f"--pretrained_ctc_folder={pretrained_ctc}")
            if "a2w" in needs:
                extra += [f"--pretrained_a2w_folder={pretrained_a2w['folders']['_cpu']}",
                          f"--vocab_size={pretrained_a2w['vocab_size']}", "--max_duration=6"]
            if "coattention" in script:
                extra.append("--max_duration=8")
            proc = run_recipe(script, os.path.join(os.path.dirname(script), "hparams", hparams),
                              f"--data_folder={iemocap}", f"--output_folder={out}", "--debug",
                              "--debug_persistently", *extra, cwd=out)
            assert proc.returncode == 0, proc.stderr[-3000:]
            folds[name] = out
        return folds[name]

    return train


@pytest.fixture(scope="session")
def exported(trained_fold, tmp_path_factory):
    """``exported(name)``: the model folder of ``trained_fold(name)``, moved away from
    where it was written (it must load from anywhere)."""
    from speechbrain_ext.export import export

    models = {}

    def model(name):
        if name not in models:
            written = export(str(trained_fold(name)), str(tmp_path_factory.mktemp("export")
                                                          / name))
            moved = tmp_path_factory.mktemp("moved") / name
            shutil.move(written, moved)
            models[name] = moved
        return models[name]

    return model


def _interface(model_folder):
    return re.search(r"^interface: (\w+)", (model_folder / "hyperparams.yaml").read_text(),
                     re.M).group(1)


def _test_batches(fold, iemocap):
    """The clean test stage's batches: test.json order, its batch size, the rows the
    (debug-shortened) test stage wrote."""
    rows = {r["id"]: r for r in json.load(open(fold / "predictions.json"))
            if r["condition"] == "clean"}
    test = json.load(open(fold / "test.json"))
    size = int(re.search(r"^test_dataloader_options:\n  batch_size: (\d+)",
                         (fold / "hyperparams.yaml").read_text(), re.M).group(1))
    ids = [uid for uid in test if uid in rows]
    batches = [[(uid, test[uid]["wav"].replace("{data_root}", iemocap))
                for uid in ids[i:i + size]] for i in range(0, len(ids), size)]
    return batches, rows


# Run in a fresh process: load the folder both ways, predict the test stage's batches.
PREDICT = r"""
import json, sys
from speechbrain.inference.interfaces import foreign_class
folder, classname, batches = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
if classname == "EmotionClassifier":
    from speechbrain_ext.inference import EmotionClassifier as cls
else:
    sys.path.insert(0, folder)
    cls = getattr(__import__("custom_interface"), classname)
models = {"from_hparams": cls.from_hparams(source=folder),
          "foreign_class": foreign_class(source=folder, pymodule_file="custom_interface.py",
                                         classname=classname)}
out = {}
for how, model in models.items():
    out[how] = {}
    for batch in batches:
        wavs, lens = model.load_batch([path for _, path in batch])
        if hasattr(model, "transcribe_and_classify_batch"):
            texts, (log_probs, _, _, labels) = model.transcribe_and_classify_batch(wavs, lens)
        else:
            texts, (log_probs, _, _, labels) = None, model.classify_batch(wavs, lens)
        for k, (uid, _) in enumerate(batch):
            out[how][uid] = {"emo_pred": labels[k], "emo_posteriors": model.posteriors(log_probs[k]),
                             "words_pred": texts[k] if texts else None}
print(json.dumps(out))
"""


@pytest.mark.parametrize("name", sorted(MODELS))
def test_exported_model_predicts_what_the_test_stage_wrote(name, trained_fold, exported,
                                                          iemocap, tmp_path):
    fold, model = trained_fold(name), exported(name)
    assert {"hyperparams.yaml", "label_encoder.txt", "custom_interface.py",
            "README.md"} <= set(os.listdir(model))
    card = (model / "README.md").read_text()
    assert "## Test results of the fold" in card and "| clean |" in card
    batches, rows = _test_batches(fold, iemocap)
    (tmp_path / "batches.json").write_text(json.dumps(batches))
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-c", PREDICT, str(model), _interface(model),
                           str(tmp_path / "batches.json")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    predicted = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sum(len(b) for b in batches) == len(rows) > 0
    for how in ("from_hparams", "foreign_class"):
        for uid, row in rows.items():
            got = predicted[how][uid]
            assert got["emo_pred"] == row["emo_pred"], (how, uid)
            assert got["emo_posteriors"].keys() == row["emo_posteriors"].keys()
            for label, p in row["emo_posteriors"].items():
                assert got["emo_posteriors"][label] == pytest.approx(p, abs=1e-5), (how, uid)
            assert got["words_pred"] == row.get("words_pred"), (how, uid)


@pytest.fixture(scope="session")
def loaded(exported):
    """``loaded(name)``: the exported model, loaded here with ``foreign_class``."""
    from speechbrain.inference.interfaces import foreign_class

    cache = {}

    def load(name):
        if name not in cache:
            folder = exported(name)
            cache[name] = foreign_class(source=str(folder), pymodule_file="custom_interface.py",
                                        classname=_interface(folder))
        return cache[name]

    return load


def _some_test_wavs(trained_fold, iemocap, name, n=3):
    batches, _ = _test_batches(trained_fold(name), iemocap)
    return [path for batch in batches for _, path in batch][:n]


@pytest.mark.parametrize("name", sorted(SHARED_ENCODER))
def test_joint_interface_runs_the_shared_encoder_once_for_both_tasks(name, loaded, trained_fold,
                                                                      iemocap):
    model = loaded(name)
    calls = []
    hook = model.mods[SHARED_ENCODER[name]].register_forward_hook(lambda *args: calls.append(1))
    try:
        paths = _some_test_wavs(trained_fold, iemocap, name)
        transcripts, (_, _, _, labels) = model.transcribe_and_classify_batch(
            *model.load_batch(paths))
        assert len(calls) == 1 and len(transcripts) == len(labels) == len(paths)
        transcript, label, posteriors = model.transcribe_and_classify_file(paths[0])
        assert len(calls) == 2
        assert isinstance(transcript, str) and label in posteriors
        assert sum(posteriors.values()) == pytest.approx(1.0, abs=1e-5)
    finally:
        hook.remove()


@pytest.mark.parametrize("name", ["joint", "e_transformer"])
def test_48khz_stereo_file_gives_the_result_of_its_16khz_mono_copy(name, loaded, trained_fold,
                                                                   iemocap, tmp_path):
    model = loaded(name)
    mono, rate = sf.read(_some_test_wavs(trained_fold, iemocap, name, n=1)[0], dtype="float32")
    assert rate == 16000 and mono.ndim == 1
    # A 48 kHz stereo recording (unequal channels) and its 16 kHz mono copy, made as a
    # user would: channels averaged, then resampled.
    up = torchaudio.functional.resample(torch.from_numpy(mono), 16000, 48000)
    stereo = torch.stack([1.5 * up, 0.5 * up], dim=1)
    sf.write(tmp_path / "stereo48k.wav", stereo.numpy(), 48000, subtype="FLOAT")
    copy = torchaudio.functional.resample(stereo.mean(dim=1), 48000, 16000)
    sf.write(tmp_path / "mono16k.wav", copy.numpy(), 16000, subtype="FLOAT")
    (p_copy, _, _, l_copy), (p_stereo, _, _, l_stereo) = (
        model.classify_file(str(tmp_path / "mono16k.wav")),
        model.classify_file(str(tmp_path / "stereo48k.wav")))
    assert l_copy == l_stereo
    assert torch.allclose(p_copy.exp(), p_stereo.exp(), atol=1e-4)
    if name == "joint":
        assert (model.transcribe_file(str(tmp_path / "mono16k.wav"))
                == model.transcribe_file(str(tmp_path / "stereo48k.wav")))


def test_bad_audio_gives_a_clear_error(loaded, tmp_path):
    from speechbrain_ext.audio import AudioReadError

    model = loaded("e_transformer")
    (tmp_path / "text.wav").write_text("not audio")
    sf.write(tmp_path / "empty.wav", np.zeros(0, dtype="float32"), 16000)
    sf.write(tmp_path / "short.wav", np.zeros(800, dtype="float32"), 16000)  # 0.05 s
    for name, message in [("missing.wav", "not found"), ("text.wav", "cannot read"),
                          ("empty.wav", "is empty"), ("short.wav", "too short: 0.050 s")]:
        with pytest.raises(AudioReadError, match=message):
            model.classify_file(str(tmp_path / name))


def test_command_line_writes_one_line_per_file_and_flags_bad_ones(exported, loaded, trained_fold,
                                                                  iemocap, tmp_path):
    fold = trained_fold("joint")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "speechbrain_ext.infer", "--model", str(exported("joint")),
         "--manifest", str(fold / "test.json"), "--data_root", os.path.relpath(iemocap, REPO),
         "--batch_size", "1",
         str(tmp_path / "missing.wav")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-3000:]  # one file failed
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    test = json.load(open(fold / "test.json"))
    assert [r["id"] for r in lines] == ["missing"] + list(test)  # input order, not length order
    assert "not found" in lines[0]["error"]
    model = loaded("joint")
    for line in lines[1:]:  # each line is its own file's result
        transcript, emotion, posteriors = model.transcribe_and_classify_file(line["wav"])
        assert line["wav"] == test[line["id"]]["wav"].replace("{data_root}",
                                                              os.path.relpath(iemocap, REPO))
        assert (line["transcript"], line["emotion"]) == (transcript, emotion)
        assert line["posteriors"] == pytest.approx(posteriors, abs=1e-5)


def test_export_of_an_unfinished_fold_or_a_reference_row_fails_clearly(tmp_path):
    from speechbrain_ext.export import export

    with pytest.raises(SystemExit, match="needs a finished fold"):
        export(str(tmp_path), str(tmp_path / "model"))
    sys.path.insert(0, os.path.join(REPO, "recipes", "asr_fusion_coattention"))
    try:
        from custom_interface import export_spec
    finally:
        sys.path.pop(0)
        sys.modules.pop("custom_interface", None)
    with pytest.raises(SystemExit, match="cannot run on audio alone"):
        export_spec({"text_source": "reference", "streams": ["text"], "modules": {}})
