"""The data of one fold, shared by the recipes: corpus prep, fold manifests, noise, datasets.

A recipe's main calls ``prepare_fold_data(hparams)`` (on the main process only,
through ``run_on_main`` inside) and then ``emotion_datasets(hparams, manifests)``.
The hparams keys used are those of the recipes' YAMLs: ``corpus`` (``iemocap``,
``ravdess`` or ``manifest``; default ``iemocap``), ``data_folder``,
``manifest_file`` (corpus ``manifest``), ``ravdess_intensity`` (corpus ``ravdess``),
``prep_folder``, ``skip_prep``, ``emotions``, ``merge``, ``improvised_only`` (IEMOCAP),
``drop_no_transcript``, ``max_duration``, ``fold_scheme``, ``fold``, ``fold_seed``,
``output_folder``, ``{train,valid,test}_annotation``, ``save_folder``; and, for noise
(optional; defaults in ``NOISE_DEFAULTS``), ``musan_folder``, ``musan_prep_folder``,
``noise_test_fraction``, ``noise_seed``, ``noisy_test_folder``, ``test_conditions``.
Validation and test sets come sorted by duration (less padding); training sets as
the manifest orders them (the recipes shuffle or bucket them).

Example
-------
>>> import tempfile
>>> from data_prep.synthetic import generate
>>> corpus = generate(tempfile.mkdtemp(), size="tiny", corpora=["iemocap"])["iemocap"]
>>> out = tempfile.mkdtemp()
>>> hparams = {"data_folder": corpus, "prep_folder": f"{out}/prep", "skip_prep": False,
...            "emotions": ["ang", "hap", "neu", "sad"], "merge": {"exc": "hap"},
...            "improvised_only": False, "drop_no_transcript": False, "max_duration": None,
...            "fold_scheme": "speaker10", "fold": 1, "fold_seed": 1, "output_folder": out,
...            "save_folder": f"{out}/save", "train_annotation": f"{out}/train.json",
...            "valid_annotation": f"{out}/valid.json", "test_annotation": f"{out}/test.json"}
>>> manifests = prepare_fold_data(hparams)
>>> datasets, label_encoder = emotion_datasets(hparams, manifests)
>>> sorted(datasets), len(label_encoder)
(['test_clean', 'train', 'valid'], 4)
>>> test = datasets["test_clean"]  # validation and test sets: shortest first
>>> durations = [test.data[uid]["duration"] for uid in test.data_ids]
>>> durations == sorted(durations), len(durations) > 5
(True, True)
"""

import logging
import os

import speechbrain as sb
from speechbrain.utils.distributed import run_on_main

from data_prep.iemocap_prepare import prepare_iemocap
from data_prep.manifest import prepare_manifest
from data_prep.musan_prepare import prepare_musan
from data_prep.noisy_testsets import build_noisy_testsets
from data_prep.ravdess_prepare import prepare_ravdess
from speechbrain_ext.audio import read_audio
from speechbrain_ext.ctc import ctc_target_pipeline
from speechbrain_ext.folds import write_fold_manifests

logger = logging.getLogger(__name__)
NOISE_DEFAULTS = {"musan_folder": None, "noise_test_fraction": 0.2, "noise_seed": 0,
                  "test_conditions": ["clean"]}


def _noise_option(hparams, key):
    if key == "musan_prep_folder":
        return hparams.get(key, os.path.join(hparams["output_folder"], "..", "musan_prep"))
    if key == "noisy_test_folder":
        return hparams.get(key, os.path.join(hparams["output_folder"], "noisy_test"))
    return hparams.get(key, NOISE_DEFAULTS[key])


def prepare_corpus(hparams):
    """``data.json`` of the YAML's ``corpus`` in ``prep_folder``; returns its path."""
    corpus = hparams.get("corpus", "iemocap")
    common = {"output_folder": hparams["prep_folder"], "classes": hparams["emotions"],
              "merge": hparams["merge"], "max_duration": hparams["max_duration"]}
    if corpus == "iemocap":
        return prepare_iemocap(hparams["data_folder"], improvised_only=hparams["improvised_only"],
                               drop_no_transcript=hparams["drop_no_transcript"], **common)
    if hparams.get("improvised_only"):
        logger.warning("improvised_only is an IEMOCAP option: ignored for corpus %s", corpus)
    if corpus == "ravdess":  # every RAVDESS file has its transcript
        return prepare_ravdess(hparams["data_folder"],
                               intensity=hparams.get("ravdess_intensity", "all"), **common)
    if corpus == "manifest":
        if not hparams.get("manifest_file"):
            raise SystemExit("error: corpus: manifest needs --manifest_file=/path/to/corpus.jsonl")
        return prepare_manifest(hparams["manifest_file"], data_root=hparams["data_folder"],
                                drop_no_transcript=hparams["drop_no_transcript"], **common)
    raise SystemExit(f"error: unknown corpus {corpus!r}; choose iemocap, ravdess or manifest")


def prepare_fold_data(hparams):
    """Corpus prep, the fold's manifests, MUSAN pools and the fold's test matrix.

    Returns ``{condition: manifest path}`` for the test conditions.
    """
    if not hparams["skip_prep"]:
        run_on_main(prepare_corpus, kwargs={"hparams": hparams})
        run_on_main(write_fold_manifests, kwargs={
            "data_json": os.path.join(hparams["prep_folder"], "data.json"),
            "scheme": hparams["fold_scheme"],
            "fold": hparams["fold"],
            "output_folder": hparams["output_folder"],
            "seed": hparams["fold_seed"],
        })
    conditions = _noise_option(hparams, "test_conditions")
    noisy = [c for c in conditions if c != "clean"]
    musan_folder = _noise_option(hparams, "musan_folder")
    if noisy and not musan_folder:
        raise SystemExit(f"error: test_conditions {noisy} need --musan_folder=/path/to/musan")
    musan_prep_folder = _noise_option(hparams, "musan_prep_folder")
    if musan_folder:
        run_on_main(prepare_musan, kwargs={
            "musan_folder": musan_folder,
            "output_folder": musan_prep_folder,
            "test_fraction": _noise_option(hparams, "noise_test_fraction"),
            "seed": _noise_option(hparams, "noise_seed"),
        })
    noisy_test_folder = _noise_option(hparams, "noisy_test_folder")
    run_on_main(build_noisy_testsets, kwargs={
        "manifest": hparams["test_annotation"],
        "noise_csvs": musan_prep_folder,
        "out": noisy_test_folder,
        "seed": _noise_option(hparams, "noise_seed"),
        "conditions": conditions,
        "replacements": {"data_root": hparams["data_folder"]},
    })
    return {c: os.path.join(noisy_test_folder, f"{c}.json") for c in conditions}


def emotion_datasets(hparams, test_manifests, feature_cache=None, ctc_encoder=None,
                     word_vocabulary=None):
    """Train / valid datasets, one ``test_<condition>`` dataset each, and the label encoder.

    Items: ``id``, ``sig`` (the waveform) or, with a ``feature_cache``
    (``speechbrain_ext.feature_cache.FeatureCache``), ``feats`` (its cached raw
    features), ``emo_encoded``, ``emo``, ``speaker``; with a ``ctc_encoder``
    (``speechbrain_ext.ctc.character_encoder()``) also ``words`` (the reference) and
    ``tokens`` (its character indices, the CTC target); with a ``word_vocabulary``
    (``speechbrain_ext.words.WordVocabulary``) ``words``, ``tokens_bos`` and
    ``tokens_eos`` (word ids for an attention decoder). The label order is
    ``hparams["emotions"]``, identical in every fold.
    """
    signal = "sig" if feature_cache is None else "feats"

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides(signal)
    def audio_pipeline(wav):
        if feature_cache is None:
            return read_audio(wav)  # any rate / channel count -> 16 kHz mono
        return feature_cache(wav)

    label_encoder = sb.dataio.encoder.CategoricalEncoder()

    @sb.utils.data_pipeline.takes("emo")
    @sb.utils.data_pipeline.provides("emo_encoded")
    def label_pipeline(emo):
        return label_encoder.encode_label_torch(emo)

    dynamic_items = [audio_pipeline, label_pipeline]
    output_keys = ["id", signal, "emo_encoded", "emo", "speaker"]
    if ctc_encoder is not None:
        dynamic_items.append(ctc_target_pipeline(ctc_encoder))
        output_keys += ["words", "tokens"]
    if word_vocabulary is not None:
        dynamic_items.append(word_vocabulary.target_pipeline())
        output_keys += [key for key in ("words", "tokens_bos", "tokens_eos")
                        if key not in output_keys]

    json_paths = {"train": hparams["train_annotation"], "valid": hparams["valid_annotation"]}
    json_paths.update({f"test_{cond}": path for cond, path in test_manifests.items()})
    replacements = {"data_root": hparams["data_folder"],
                    "matrix_root": _noise_option(hparams, "noisy_test_folder")}
    datasets = {}
    for split, json_path in json_paths.items():
        datasets[split] = sb.dataio.dataset.DynamicItemDataset.from_json(
            json_path=json_path, replacements=replacements,
            dynamic_items=dynamic_items, output_keys=output_keys)
        if split != "train":  # by duration: less padding (rows come in that order)
            datasets[split] = datasets[split].filtered_sorted(sort_key="duration")
    os.makedirs(hparams["save_folder"], exist_ok=True)
    label_encoder.load_or_create(
        path=os.path.join(hparams["save_folder"], "label_encoder.txt"),
        from_iterables=[hparams["emotions"]],
    )
    return datasets, label_encoder
