"""The recipes' own Brains on real batches: padding, augmentation in training, and
which checkpoint is tested."""

import glob
import os
import types

import pytest
import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.augment.augmenter import Augmenter
from speechbrain.augment.time_domain import SpeedPerturb

from conftest import REPO, load_recipe_script, run_recipe
from speechbrain_ext.ctc import character_encoder
from speechbrain_ext.evaluation import test_on_conditions as run_test_on_conditions

CORNN_YAMLS = ["cornn", "wo_conformer", "wo_bilstm", "acrnn"]


def _hparams(recipe, name, tmp_path, **overrides):
    if recipe in ("e_transformer", "cornn"):
        overrides["feature_cache_folder"] = str(tmp_path / "cache")
    with open(os.path.join(REPO, "recipes", recipe, "hparams", f"{name}.yaml")) as f:
        return load_hyperpyyaml(f, {"data_folder": "unused", "output_folder": str(tmp_path),
                                    **overrides})


def _brain(recipe, name, tmp_path, brain_class, script="train", **extra_hparams):
    overrides = {}
    if "pretrained_ctc_folder: !PLACEHOLDER" in open(os.path.join(
            REPO, "recipes", recipe, "hparams", f"{name}.yaml")).read():
        overrides["pretrained_ctc_folder"] = str(tmp_path)  # named, not loaded here
    hparams = _hparams(recipe, name, tmp_path, **overrides)
    hparams.update(extra_hparams)
    module = load_recipe_script(recipe, script)
    brain = getattr(module, brain_class)(modules=hparams["modules"], hparams=hparams,
                                         run_opts={"device": "cpu"},
                                         checkpointer=hparams["checkpointer"])
    # Normalisation statistics as after training, then inference mode.
    brain.modules.train()
    front_end = brain.modules.features if "features" in brain.modules else brain.modules.encoder
    front_end(0.1 * torch.randn(4, 32000), torch.ones(4))
    brain.modules.eval()
    return brain


def _wavs(iemocap, n=2):
    """The shortest and the longest of the first 40 synthetic IEMOCAP turns."""
    paths = sorted(glob.glob(f"{iemocap}/Session1/sentences/wav/*/*.wav"))[:40]
    wavs = sorted((sb.dataio.dataio.read_audio(p) for p in paths), key=len)
    assert len(wavs[0]) < 0.8 * len(wavs[-1])
    return wavs[0], wavs[-1]


def _batch(signals, key="sig"):
    return sb.dataio.batch.PaddedBatch([
        {"id": f"u{i}", key: s, "emo_encoded": torch.LongTensor([i % 4]), "emo": "neu",
         "speaker": "Ses01F"} for i, s in enumerate(signals)])


def record_calls(module):
    """Records in ``module.calls`` the positional arguments of each call of ``module``,
    also the calls its own methods make (e.g. ``batch_features`` calling ``forward``)."""
    calls, forward = [], module.forward

    def recording_forward(*args):
        calls.append(args)
        return forward(*args)

    module.forward, module.calls = recording_forward, calls
    return module


# --- cornn -------------------------------------------------------------------------

@pytest.mark.parametrize("name", CORNN_YAMLS)
def test_cornn_brain_pools_the_utterance_own_frames(name, iemocap, tmp_path):
    torch.manual_seed(0)
    brain = _brain("cornn", name, tmp_path, "CoRNNBrain")
    short, long = _wavs(iemocap)
    record_calls(brain.modules.pooling)
    with torch.no_grad():
        alone = brain.compute_forward(_batch([short]), sb.Stage.TEST)
        in_batch = brain.compute_forward(_batch([short, long]), sb.Stage.TEST)
    # An utterance alone and padded beside a longer one: the same posteriors.
    assert torch.allclose(alone[0], in_batch[0], atol=1e-4)
    # The pooling reads the utterance's own frames: features are cut/padded to 3 s,
    # and the short turn fills only part of them.
    _, feat_lens = brain.modules.features(*_batch([short, long]).sig)
    frames, lens = brain.modules.pooling.calls[-1]
    assert lens is not None and torch.allclose(lens, feat_lens)
    assert lens[0] < 1.0 and frames.shape[0] == 2


def test_cornn_wav_augment_changes_what_training_sees(iemocap, tmp_path):
    torch.manual_seed(0)
    augment = Augmenter(augmentations=[SpeedPerturb(orig_freq=16000, speeds=[80])])
    brain = _brain("cornn", "wo_bilstm", tmp_path, "CoRNNBrain", wav_augment=augment)
    record_calls(brain.modules.features)
    short, long = _wavs(iemocap)
    batch = _batch([short, long])
    for stage in (sb.Stage.TRAIN, sb.Stage.VALID):
        brain.on_stage_start(stage)
        predictions = brain.compute_forward(batch, stage)
        assert torch.isfinite(brain.compute_objectives(predictions, batch, stage))
    (train_wavs, _), (valid_wavs, _) = brain.modules.features.calls
    assert abs(train_wavs.shape[1] - batch.sig[0].shape[1] / 0.8) <= 1  # speed 80 %
    assert torch.equal(valid_wavs, batch.sig[0])  # validation sees the clean wav


# --- e_transformer -----------------------------------------------------------------

def test_e_transformer_brain_on_cached_features_ignores_batch_padding(iemocap, tmp_path):
    torch.manual_seed(0)
    brain = _brain("e_transformer", "e_transformer", tmp_path, "ETransformerBrain")
    short, long = _wavs(iemocap)
    raw = [brain.modules.features.utterance_features(w) for w in (short, long)]
    with torch.no_grad():
        alone = brain.compute_forward(_batch(raw[:1], key="feats"), sb.Stage.TEST)
        in_batch = brain.compute_forward(_batch(raw, key="feats"), sb.Stage.TEST)
    assert torch.allclose(alone[0], in_batch[0], atol=1e-4)


def test_e_transformer_wav_augment_changes_what_training_sees(iemocap, tmp_path):
    torch.manual_seed(0)
    augment = Augmenter(augmentations=[SpeedPerturb(orig_freq=16000, speeds=[80])])
    brain = _brain("e_transformer", "base7", tmp_path, "ETransformerBrain",
                   wav_augment=augment)
    record_calls(brain.modules.features)
    batch = _batch(list(_wavs(iemocap)))
    for stage in (sb.Stage.TRAIN, sb.Stage.VALID):
        brain.on_stage_start(stage)
        brain.compute_objectives(brain.compute_forward(batch, stage), batch, stage)
    (train_wavs, _), (valid_wavs, _) = brain.modules.features.calls
    assert abs(train_wavs.shape[1] - batch.sig[0].shape[1] / 0.8) <= 1
    assert torch.equal(valid_wavs, batch.sig[0])


NOISY_TRAINING = """
musan_noise: !new:speechbrain_ext.noise.AddMusanNoise
    noise_csv: !ref <musan_prep_folder>/noise_train.csv
    music_csv: !ref <musan_prep_folder>/music_train.csv
    speech_csv: !ref <musan_prep_folder>/speech_train.csv
wav_augment: !new:speechbrain.augment.augmenter.Augmenter
    augmentations: [!ref <musan_noise>]
"""


def test_e_transformer_yaml_with_wav_augment_trains_on_the_fly(corpora, tmp_path):
    """A YAML that adds MUSAN noise runs end to end without the feature cache."""
    yaml = tmp_path / "base7_noisy.yaml"
    yaml.write_text(open(os.path.join(REPO, "recipes/e_transformer/hparams/base7.yaml")).read()
                    + NOISY_TRAINING)
    out = tmp_path / "out"
    proc = run_recipe("recipes/e_transformer/train.py", str(yaml),
                      f"--data_folder={corpora['iemocap']}", f"--output_folder={out}",
                      f"--musan_folder={corpora['musan']}", f"--feature_cache_folder={tmp_path}/cache",
                      "--debug", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "predictions.json").exists()
    assert not glob.glob(f"{tmp_path}/cache/*/*/*.pt")  # nothing served from the cache


# --- which checkpoint is tested ----------------------------------------------------

class FixedError:
    """Stands in for the validation error statistics: summarises to a given value."""

    def __init__(self, value):
        self.value = value

    def summarize(self, field=None):
        return self.value


@pytest.mark.parametrize("recipe,name,brain_class,script", [
    ("cornn", "wo_bilstm", "CoRNNBrain", "train"),
    ("e_transformer", "base7", "ETransformerBrain", "train"),
    ("joint_asr_ser", "ser_crnn", "EmotionBrain", "train_ser"),
])
@pytest.mark.parametrize("select_on_valid,expected_epoch", [(True, 2), (False, 3)])
def test_tested_checkpoint_is_best_validation_epoch_or_last(recipe, name, brain_class, script,
                                                             select_on_valid, expected_epoch,
                                                             iemocap, tmp_path):
    brain = _brain(recipe, name, tmp_path, brain_class, script, select_on_valid=select_on_valid,
                   test_dataloader_options={"batch_size": 2},
                   predictions_file=str(tmp_path / "predictions.json"))
    if "init_optimizers" in type(brain).__dict__:
        brain.init_optimizers()  # its on_stage_end anneals both learning rates
    brain.label_encoder = sb.dataio.encoder.CategoricalEncoder()
    brain.label_encoder.update_from_iterable(["ang", "hap", "neu", "sad"])
    classifier = [p for p in brain.modules.classifier.parameters()][0]
    # Three epochs whose validation errors are 0.5, 0.2, 0.4; the classifier weights
    # carry the epoch number, so the loaded checkpoint can be read from them.
    for epoch, error in enumerate([0.5, 0.2, 0.4], start=1):
        brain.hparams.epoch_counter.current = epoch
        with torch.no_grad():
            classifier.fill_(float(epoch))
        brain.on_stage_end(sb.Stage.TRAIN, 1.0, epoch)
        brain.on_stage_start(sb.Stage.VALID, epoch)
        brain.error_metrics = FixedError(error)
        brain.on_stage_end(sb.Stage.VALID, 1.0, epoch)
    short, long = _wavs(iemocap)
    dataset = sb.dataio.dataset.DynamicItemDataset({
        "u0": {"sig": short, "emo_encoded": torch.LongTensor([0]), "emo": "ang", "speaker": "x"},
        "u1": {"sig": long, "emo_encoded": torch.LongTensor([1]), "emo": "hap", "speaker": "x"},
    }, output_keys=["id", "sig", "emo_encoded", "emo", "speaker"])
    if recipe == "e_transformer":  # cached raw features, as its main builds them
        dataset.add_dynamic_item(sb.utils.data_pipeline.takes("sig")(
            sb.utils.data_pipeline.provides("feats")(brain.modules.features.utterance_features)))
        dataset.set_output_keys(["id", "feats", "emo_encoded", "emo", "speaker"])
    rows = run_test_on_conditions(brain, {"test_clean": dataset}, ["clean"])
    assert len(rows) == 2 and os.path.exists(tmp_path / "predictions.json")
    assert torch.all(classifier == expected_epoch)
    assert brain.hparams.epoch_counter.current == expected_epoch


# --- joint_asr_ser: upstream's ECAPA-TDNN in the SER baseline script (ser_ecapa.yaml) ----

def test_ser_ecapa_brain_trains_with_the_angular_margin_and_steps_the_cyclic_lr_per_batch(
        iemocap, tmp_path):
    from speechbrain.nnet.schedulers import CyclicLRScheduler

    brain = _brain("joint_asr_ser", "ser_ecapa", tmp_path, "EmotionBrain", "train_ser")
    brain.on_fit_start()  # optimizer (Adam at lr), checkpointer
    batch = _batch(_wavs(iemocap))
    brain.modules.train()
    brain.on_stage_start(sb.Stage.TRAIN, 1)
    lrs = []
    for _ in range(3):
        brain.fit_batch(batch)
        lrs.append(brain.optimizer.param_groups[0]["lr"])
    # upstream's schedule, stepped once per batch: exp_range between 1e-6 and 1e-4
    reference = CyclicLRScheduler(base_lr=1e-6, max_lr=1e-4, step_size=1088, mode="exp_range",
                                  gamma=0.9998)
    assert lrs == pytest.approx([reference.clr(k) for k in (1, 2, 3)])
    assert lrs[0] < lrs[1] < lrs[2] < 2e-6
    # The loss on the cosines: -log softmax with s cos(theta + m) for the target, by hand.
    brain.modules.eval()
    with torch.no_grad():
        cosines = brain.compute_forward(batch, sb.Stage.VALID)
        brain.on_stage_start(sb.Stage.VALID, 1)
        loss = brain.compute_objectives(cosines, batch, sb.Stage.VALID)
    assert cosines.shape == (2, 4) and cosines.abs().max() <= 1
    targets = torch.tensor([0, 1])
    logits = 30 * cosines.clone()
    theta = torch.acos(cosines[torch.arange(2), targets].clamp(-1, 1))
    logits[torch.arange(2), targets] = 30 * torch.cos(theta + 0.2)
    expected = -torch.log_softmax(logits, dim=-1)[torch.arange(2), targets].mean()
    assert float(loss) == pytest.approx(float(expected), rel=1e-4)
    # Posteriors (predictions.json, inference): softmax of 30 x cosine, no margin.
    assert brain.hparams.log_softmax(cosines).exp() == pytest.approx(
        torch.softmax(30 * cosines, dim=-1))


def test_paper_ser_yamls_loss_is_the_softmax_nll_of_the_scores(tiny_wav2vec2, corpora, tmp_path):
    scores, targets = torch.tensor([[2.0, 0.0, -1.0, 0.5], [0.1, 0.2, 0.3, 3.0]]), \
        torch.tensor([[0], [2]])
    for name in ("ser_crnn", "ser_crnn_noisy", "ser_w2v2", "ser_w2v2_noisy"):
        text = open(os.path.join(REPO, "recipes", "joint_asr_ser", "hparams", f"{name}.yaml")).read()
        overrides = {"pretrained_ctc_folder": "unused", "musan_folder": corpora["musan"],
                     "wav2vec2_hub": tiny_wav2vec2, "encoder_dim": 32}
        hparams = _hparams("joint_asr_ser", name, tmp_path, **{
            k: v for k, v in overrides.items() if f"\n{k}:" in text})
        expected = -torch.log_softmax(scores, dim=-1)[[0, 1], [0, 2]].mean()
        assert float(hparams["compute_cost"](scores, targets)) == pytest.approx(
            float(expected)), name


def test_bucketed_batches_of_one_turn_are_merged_when_min_batch_size_is_2():
    helpers = load_recipe_script("joint_asr_ser", "recipe_helpers")
    durations = [1.0, 1.1, 1.2, 1.3, 9.5, 2.0, 2.1]  # 9.5 s fills a 10-s batch alone
    data = sb.dataio.dataset.DynamicItemDataset(
        {f"u{i}": {"duration": d} for i, d in enumerate(durations)})
    options = dict(max_batch_length=10, num_buckets=3, length_func=lambda x: x["duration"],
                   shuffle=False, batch_ordering="ascending")
    plain = list(sb.dataio.sampler.DynamicBatchSampler(data, **options))
    assert min(len(b) for b in plain) == 1  # what SpeechBrain's sampler gives
    merged = list(helpers.DynamicBatchSampler(data, min_batch_size=2, **options))
    assert min(len(b) for b in merged) >= 2
    assert sorted(i for b in merged for i in b) == list(range(len(durations)))



# --- joint_asr_ser: the CRNN stand-in's frames ---------------------------------------

def _spy_lengths(brain, key, seen):
    """Wraps ``brain.hparams.<key>`` (called with frames, lengths, ...) to record the
    frame counts it reads: ``round(length * frames)``, as SpeechBrain counts them."""
    consumer = getattr(brain.hparams, key)

    def recording(frames, lens, *args, **kwargs):
        seen.append((key, torch.round(lens * frames.shape[1]).long().tolist()))
        return consumer(frames, lens, *args, **kwargs)

    setattr(brain.hparams, key, recording)


@pytest.mark.parametrize("script, name, brain_class", [
    ("pretrain_ctc", "pretrain_ctc_crnn", "CTCBrain"),
    ("train_asr", "asr_crnn", "ASRBrain"),
    ("train_ser", "ser_crnn", "EmotionBrain"),
    ("train_joint", "joint_crnn", "JointASRSERBrain"),
])
def test_crnn_brains_read_the_encoders_own_frames(script, name, brain_class, tmp_path):
    """Beside a turn of 24000 samples (51 output frames), the stand-in gives one of
    16240 samples 34 frames and zeroes the rest; its relative wave length times 51,
    rounded (how SpeechBrain's CTC loss, greedy decoding and pooling count), makes 35.
    The lengths the Brain gives its CTC loss, decoding and pooling must count 34."""
    torch.manual_seed(0)
    brain = _brain("joint_asr_ser", name, tmp_path, brain_class, script=script)
    brain.ctc_encoder = character_encoder()
    seen = []
    for key in ("ctc_decoder", "mean_pooling"):  # those compute_forward calls
        if hasattr(brain.hparams, key):
            _spy_lengths(brain, key, seen)
    batch = _batch([0.1 * torch.randn(n, generator=torch.Generator().manual_seed(n))
                    for n in (16240, 24000)])
    with torch.no_grad():
        frames = brain.modules.encoder(*batch.sig)
        out = brain.compute_forward(batch, sb.Stage.TEST)
    own = (frames.abs().sum(dim=-1) > 0).sum(dim=1).tolist()
    assert own == [34, 51] and round(16240 / 24000 * 51) == 35
    # The lengths compute_forward returns are those of the CTC loss (and of the
    # decoding, for the ASR Brains, which decode in compute_objectives).
    if isinstance(out, tuple) and len(out) == 2:
        seen.append(("returned", torch.round(out[1] * out[0].shape[1]).long().tolist()))
    elif isinstance(out, dict):
        seen.append(("returned", torch.round(out["lens"] * out["ctc"].shape[1]).long().tolist()))
    assert len(seen) == {"pretrain_ctc": 1, "train_asr": 1, "train_ser": 1,
                         "train_joint": 3}[script], seen
    assert all(counts == own for _, counts in seen), seen

    # The exported model's forward on the same modules (the recipe's custom_interface.py,
    # speechbrain_ext.inference): the same frames.
    if script == "pretrain_ctc":
        return
    seen.clear()
    interface = load_recipe_script("joint_asr_ser", "custom_interface")
    hparams = types.SimpleNamespace(**vars(brain.hparams), token_encoder=brain.ctc_encoder)
    mods = _Modules(brain.modules, pooling=brain.hparams.mean_pooling
                    if script == "train_ser" else None)
    model = types.SimpleNamespace(mods=mods, hparams=hparams, device="cpu")
    with torch.no_grad():
        if script == "train_asr":
            interface.CTCTranscriber.transcribe_batch(model, *batch.sig)
        elif script == "train_ser":
            interface.EmotionClassifier.emotion_log_probs(model, *batch.sig)
        else:
            interface.JointCTCTextFusion.forward_batch(model, *batch.sig)
    assert len(seen) == {"train_asr": 1, "train_ser": 1, "train_joint": 2}[script], seen
    assert all(counts == own for _, counts in seen), seen


class _Modules(dict):
    """An exported model's ``mods``: the Brain's modules by attribute and ``in``."""

    def __init__(self, modules, **more):
        super().__init__(modules.items(), **{k: v for k, v in more.items() if v})

    __getattr__ = dict.__getitem__
