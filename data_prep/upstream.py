"""Run upstream SpeechBrain's IEMOCAP emotion recipe on our folds; summarise it like ours.

    python -m data_prep.upstream --recipe_dir /path/to/speechbrain/recipes/IEMOCAP/emotion_recognition \\
        --folds speaker10 [--fold_ids 1,2] --data_folder /data/IEMOCAP_full_release \\
        --output_folder results/upstream_ecapa [-- --number_of_epochs=10 ...]

For each fold it prepares our corpus data (``iemocap_prepare``, shared by the folds)
and the fold's ``train.json`` / ``valid.json`` / ``test.json`` (``speechbrain_ext.folds``),
then runs upstream's **unmodified** ``train.py`` (the ECAPA-TDNN recipe) with
``--skip_prep=True`` and the three annotation overrides, one output folder per fold
(``<output_folder>/fold<k>``; arguments after ``--`` go to upstream's script). Its
``predictions.csv`` (label indices) becomes our ``predictions.json`` through its own
``save/label_encoder.txt``; a fold with ``predictions.json`` is finished and skipped
on the next run (resume), and ``summary.md`` / ``summary.json`` / ``confusion.png``
are written as the fold runner writes them, labelled with the upstream commit when
``--upstream_commit`` names it.

Upstream's ``train_with_wav2vec2.py`` (``--script train_with_wav2vec2.py``) writes
no per-utterance predictions: it logs only its test error. After it has run, this
command imports that same unmodified file as a module (its training code sits under
``if __name__ == "__main__"``), rebuilds its ``EmoIdBrain`` and datasets
(``dataio_prep``) from the fold's saved ``hyperparams.yaml``, loads the checkpoint
upstream tested (lowest validation ``error_rate``) and runs its own ``compute_forward``
over the test set in file order, in upstream's batch size. Upstream's test stage
shuffles its batches, and with padding a turn's output can depend on its batch, so
these are the tested checkpoint's predictions rather than a copy of that stage's: the
recomputed test error and loss are written beside those upstream logged
(``test_check.json``), with a warning when they differ by more than one turn or 5 %.

Our fold manifests sidestep upstream's own preparation, which stops on any count
but 5531 and gives the female turns of dialogs whose name has a suffix letter
(``Ses03M_impro05a/05b/08a/08b``, ``Ses05M_script01_1b``) to the male speaker: the
command names, for the folds run, the turns that upstream's own preparation would
have put elsewhere (``iemocap_prepare.upstream_speaker_of``). Our ``speaker10`` fold
k is upstream's ``--different_speakers=True --test_spk_id=k``.

Example
-------
>>> rows = predictions_from_upstream(
...     [{"id": "u1", "prediction": "1", "true_value": "0"}], {0: "ang", 1: "hap"},
...     {"u1": {"speaker": "Ses01F", "emo": "ang"}})
>>> rows[0]["emo_pred"], rows[0]["emo"], rows[0]["condition"]
('hap', 'ang', 'clean')
"""

import argparse
import csv
import json
import logging
import os
import re
import subprocess
import sys

from data_prep.iemocap_prepare import (prepare_iemocap, upstream_misassigned,
                                      upstream_speaker_of)
from speechbrain_ext.export import label_order
from speechbrain_ext.fold_runner import fold_folder, summarize_folds, write_summary
from speechbrain_ext.folds import n_folds, split_fold, write_fold_manifests
from speechbrain_ext.metrics import write_predictions

logger = logging.getLogger(__name__)

PREDICTIONS = "predictions.json"


def predictions_from_upstream(csv_rows, labels, test_manifest):
    """Our prediction rows from upstream's ``predictions.csv`` rows (label indices).

    Arguments
    ---------
    csv_rows : list of dict
        ``id``, ``prediction``, ``true_value`` (indices).
    labels : dict
        ``{index: label}`` of upstream's label encoder.
    test_manifest : dict
        The fold's ``test.json`` (speaker and reference emotion of each id).
    """
    rows = []
    for row in csv_rows:
        entry = test_manifest[row["id"]]
        if labels[int(row["true_value"])] != entry["emo"]:
            raise ValueError(f"{row['id']}: upstream's true value {labels[int(row['true_value'])]}"
                             f" is not the manifest's {entry['emo']}: wrong label encoder?")
        rows.append({"id": row["id"], "speaker": entry["speaker"], "emo": entry["emo"],
                     "emo_pred": labels[int(row["prediction"])], "condition": "clean"})
    return rows


def misassigned_by_fold(data, scheme, folds, seed):
    """``{fold: [turn ids]}``: the turns whose place in the fold (train, valid, test)
    would change had the speakers come from upstream's own preparation
    (:func:`data_prep.iemocap_prepare.upstream_speaker_of`). Empty for schemes that do
    not split by speaker; for ``speaker10`` the folds of Session 3 and 5's speakers."""
    if not upstream_misassigned(data):
        return {}
    theirs = {t: dict(e, speaker=upstream_speaker_of(t)) for t, e in data.items()}
    by_fold = {}
    for fold in folds:
        ours_split, their_split = (split_fold(d, scheme, fold, seed) for d in (data, theirs))
        role = [{t: name for name, ids in split.items() for t in ids}
                for split in (ours_split, their_split)]
        moved = sorted(t for t in data if role[0].get(t) != role[1].get(t))
        if moved:
            by_fold[fold] = moved
    return by_fold


def wav2vec2_test_predictions(recipe_dir, folder, device="cpu"):
    """Per-turn test predictions of a finished run of upstream's unmodified
    ``train_with_wav2vec2.py``, as ``predictions.csv`` rows (``id``, ``prediction``,
    ``true_value``: label indices), and the test loss as its test stage averages it
    (mean of its ``compute_objectives`` over the batches).

    Its module is imported (not run), its ``EmoIdBrain`` rebuilt from the run's saved
    ``hyperparams.yaml`` with the checkpoint its test stage loaded (``min_key=
    "error_rate"``), and its ``compute_forward`` run on its test set in evaluation
    mode, batch by batch as its test stage does.
    """
    import importlib.util

    import speechbrain as sb
    import torch
    from hyperpyyaml import load_hyperpyyaml

    spec = importlib.util.spec_from_file_location(
        "upstream_train_with_wav2vec2", os.path.join(recipe_dir, "train_with_wav2vec2.py"))
    upstream = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(upstream)
    cwd = os.getcwd()
    os.chdir(recipe_dir)  # as when upstream's script ran (relative paths in its YAML)
    try:
        with open(os.path.join(folder, "hyperparams.yaml")) as f:
            hparams = load_hyperpyyaml(f)
        datasets = upstream.dataio_prep(hparams)
        brain = upstream.EmoIdBrain(modules=hparams["modules"], opt_class=hparams["opt_class"],
                                    hparams=hparams, run_opts={"device": device},
                                    checkpointer=hparams["checkpointer"])
        brain.on_evaluate_start(min_key="error_rate")
        brain.modules.eval()
        brain.on_stage_start(sb.Stage.TEST)  # as its evaluate(): sets up its metrics
        options = dict(hparams["dataloader_options"], shuffle=False)
        rows, losses = [], []
        with torch.no_grad():
            for batch in brain.make_dataloader(datasets["test"], sb.Stage.TEST, **options):
                log_probs = brain.compute_forward(batch, sb.Stage.TEST)
                emo, _ = batch.emo_encoded
                losses.append(float(brain.compute_objectives(log_probs, batch, sb.Stage.TEST)))
                for uid, pred, true in zip(batch.id, log_probs.argmax(dim=-1).tolist(),
                                           emo.squeeze(1).tolist()):
                    rows.append({"id": uid, "prediction": str(pred), "true_value": str(true)})
    finally:
        os.chdir(cwd)
    return rows, sum(losses) / len(losses)


def compare_with_logged_test(csv_rows, loss, folder):
    """The recomputed test error and loss beside those upstream's test stage logged
    (``train_log.txt``, 3 significant digits), written to ``<folder>/test_check.json``;
    a warning when they differ by more than one turn's error or 5 % of the loss.

    They need not agree exactly: upstream's test batches are shuffled, and with
    padding a turn's output can depend on its batch. A checkpoint other than the tested
    one shows as a larger difference.
    """
    logged = re.findall(r"test loss: ([0-9.e+-]+), test error_rate: ([0-9.e+-]+)",
                        open(os.path.join(folder, "train_log.txt")).read())
    if not logged:
        raise SystemExit(f"error: no test loss and error in {folder}/train_log.txt")
    logged_loss, logged_error = (float(x) for x in logged[-1])
    errors = sum(r["prediction"] != r["true_value"] for r in csv_rows) / len(csv_rows)
    check = {"logged": {"error_rate": logged_error, "loss": logged_loss},
             "recomputed": {"error_rate": errors, "loss": loss, "n": len(csv_rows)}}
    with open(os.path.join(folder, "test_check.json"), "w") as f:
        json.dump(check, f, indent=1)
    if (abs(errors - logged_error) > 1 / len(csv_rows) + 0.005
            or abs(loss - logged_loss) > 0.05 * logged_loss):
        logger.warning("%s: recomputed test error %.4f and loss %.4f, upstream logged %s and "
                       "%s: not the checkpoint upstream tested?", folder, errors, loss,
                       logged_error, logged_loss)
    return check


def run_fold(args, fold, prep_json, extra):
    """Manifests, upstream's script, conversion; returns the fold folder."""
    folder = fold_folder(args.output_folder, fold)
    if os.path.exists(os.path.join(folder, PREDICTIONS)):
        logger.info("fold %s finished earlier: %s", fold, folder)
        return folder
    paths = write_fold_manifests(prep_json, args.folds, fold, folder, seed=args.fold_seed)
    script = os.path.join(args.recipe_dir, args.script)
    cmd = [sys.executable, script, os.path.join(args.recipe_dir, "hparams", args.hparams),
           f"--data_folder={os.path.abspath(args.data_folder)}",
           f"--output_folder={os.path.abspath(folder)}", "--skip_prep=True",
           *[f"--{k}_annotation={os.path.abspath(paths[k])}" for k in ("train", "valid", "test")],
           *extra]
    with open(os.path.join(folder, "upstream_log.txt"), "w") as log:
        log.write(" ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.run(cmd, cwd=args.recipe_dir, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise SystemExit(f"error: upstream's {args.script} failed on fold {fold} "
                         f"(exit {proc.returncode}); its output: {folder}/upstream_log.txt")
    with open(paths["test"]) as f:
        test_manifest = json.load(f)
    labels = dict(enumerate(label_order(os.path.join(folder, "save", "label_encoder.txt"))))
    if args.script == "train.py":
        with open(os.path.join(folder, "predictions.csv"), newline="") as f:
            csv_rows = list(csv.DictReader(f))
    else:
        csv_rows, loss = wav2vec2_test_predictions(args.recipe_dir, folder, args.device)
        compare_with_logged_test(csv_rows, loss, folder)
    write_predictions(os.path.join(folder, PREDICTIONS),
                      predictions_from_upstream(csv_rows, labels, test_manifest))
    return folder


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe_dir", required=True,
                        help="upstream's recipes/IEMOCAP/emotion_recognition folder")
    parser.add_argument("--script", default="train.py",
                        choices=["train.py", "train_with_wav2vec2.py"],
                        help="the upstream script: the ECAPA-TDNN or the wav2vec2 recipe")
    parser.add_argument("--hparams", default=None,
                        help="its hparams file (default: train.yaml or "
                             "train_with_wav2vec2.yaml)")
    parser.add_argument("--device", default="cpu",
                        help="for the wav2vec2 recipe's test predictions (pass --device "
                             "to upstream's script after --)")
    parser.add_argument("--folds", default="speaker10", help="our fold scheme")
    parser.add_argument("--fold_ids", default=None, help="e.g. 1,2 (default: all)")
    parser.add_argument("--fold_seed", type=int, default=1234, help="as the recipes' YAMLs")
    parser.add_argument("--data_folder", required=True, help="IEMOCAP_full_release")
    parser.add_argument("--output_folder", required=True)
    parser.add_argument("--max_duration", type=float, default=None,
                        help="drop turns longer than this (seconds), as our recipes can")
    parser.add_argument("--upstream_commit", default="",
                        help="named in the summary, e.g. 9c826ef")
    args = parser.parse_args(argv)
    if args.hparams is None:
        args.hparams = args.script[:-3] + ".yaml"  # train.yaml, train_with_wav2vec2.yaml
    logging.basicConfig(level=logging.INFO, format="[upstream] %(message)s")
    folds = ([int(f) for f in args.fold_ids.split(",")] if args.fold_ids
             else list(range(1, n_folds(args.folds) + 1)))
    # Upstream keeps ang, hap, neu, sad with excited as happy: the recipes' default set.
    prep_json = prepare_iemocap(args.data_folder, os.path.join(args.output_folder, "prep"),
                                max_duration=args.max_duration)
    with open(prep_json) as f:
        data = json.load(f)
    for fold, turns in misassigned_by_fold(data, args.folds, folds, args.fold_seed).items():
        logger.warning("fold %s: with upstream's own iemocap_prepare.py speakers (female "
                       "turns read as male), %d turns would change place (train / valid / "
                       "test): %s%s. These manifests use the right speakers.", fold,
                       len(turns), ", ".join(turns[:5]), " ..." if len(turns) > 5 else "")
    for fold in folds:
        run_fold(args, fold, prep_json, extra)
        logger.info("fold %s done: %s", fold, fold_folder(args.output_folder, fold))
    name = f"upstream {args.script}" + (f" ({args.upstream_commit})" if args.upstream_commit
                                        else "")
    summary = summarize_folds(args.output_folder, args.folds, folds, name=name)
    print(write_summary(args.output_folder, summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
