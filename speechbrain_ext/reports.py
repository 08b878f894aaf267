"""Tables and plots of cross-validation results.

Example
-------
>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "cm.png")
>>> plot_confusion([[8, 2], [1, 9]], ["ang", "hap"], path)
>>> os.path.getsize(path) > 0
True
>>> print(format_mean_std(71.94, 2.31))
71.9 ± 2.3
"""

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def format_mean_std(mean, std):
    """``mean ± std`` with one decimal."""
    return f"{mean:.1f} ± {std:.1f}"


def plot_confusion(matrix, labels, path, title="Confusion matrix (% of true class)"):
    """Save a confusion matrix normalised per true class (row %), counts in brackets."""
    percent = [[100.0 * c / max(1, sum(row)) for c in row] for row in matrix]
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2, 1.1 * len(labels) + 1.5))
    ax.imshow(percent, cmap="Blues", vmin=0, vmax=100)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    for i, row in enumerate(percent):
        for j, value in enumerate(row):
            ax.text(j, i, f"{value:.1f}\n({matrix[i][j]})", ha="center", va="center",
                    fontsize=8, color="white" if value > 60 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def format_summary_markdown(summary):
    """Markdown of a fold-runner summary (see :func:`speechbrain_ext.fold_runner.summarize_folds`)."""
    n_total = summary["n_folds_in_scheme"]
    folds = ", ".join(str(k) for k in summary["folds"])
    scope = "all folds" if summary["complete"] else f"SUBSET: folds {folds} of {n_total}"
    independence = ("speaker-independent" if summary["speaker_independent"]
                    else "speaker-DEPENDENT (test speakers are also in training)")
    lines = [
        f"# {summary['name']}: {summary['scheme']} cross-validation",
        "",
        f"Folds run: {folds} ({scope}); {independence}.",
        "Mean ± std over folds (sample std); pooled = one score over all test predictions.",
        "",
    ]
    metrics = [m for m in ("WA", "UA", "WER") if any(
        m in c["pooled"] for c in summary["conditions"].values())]
    lines.append("| condition | n | " + " | ".join(f"{m} (mean ± std)" for m in metrics)
                 + " | " + " | ".join(f"{m} pooled" for m in metrics) + " |")
    lines.append("|---" * (2 + 2 * len(metrics)) + "|")
    for cond, res in summary["conditions"].items():
        cells = [format_mean_std(res["mean"][m], res["std"][m]) for m in metrics]
        cells += [f"{res['pooled'][m]:.1f}" for m in metrics]
        lines.append(f"| {cond} | {res['pooled']['n']} | " + " | ".join(cells) + " |")
    lines += ["", "Per fold:", "",
              "| condition | fold | n | " + " | ".join(metrics) + " |",
              "|---" * (3 + len(metrics)) + "|"]
    for cond, res in summary["conditions"].items():
        for fold, vals in res["per_fold"].items():
            lines.append(f"| {cond} | {fold} | {vals['n']} | "
                         + " | ".join(f"{vals[m]:.1f}" for m in metrics) + " |")
    return "\n".join(lines) + "\n"


def format_comparison_markdown(summaries):
    """One table of several fold-runner summaries (ours, upstream's), row per model and
    test condition, with a warning line when they were not run on the same folds.

    Arguments
    ---------
    summaries : list of dict
        ``summary.json`` contents (``speechbrain_ext.fold_runner.summarize_folds``; the
        upstream command writes the same).

    Returns
    -------
    str
        Markdown.

    Example
    -------
    >>> def summary(name, wa, folds):
    ...     res = {"mean": {"WA": wa, "UA": wa}, "std": {"WA": 0.0, "UA": 0.0},
    ...            "pooled": {"n": 10, "WA": wa, "UA": wa}}
    ...     return {"name": name, "scheme": "speaker10", "folds": folds,
    ...             "conditions": {"clean": res}}
    >>> print(format_comparison_markdown([summary("ours", 70.0, [1, 2]),
    ...                                  summary("upstream", 60.0, [1])]).splitlines()[-1])
    NOT COMPARABLE as they stand: the models were run on different schemes or folds.
    """
    metrics = [m for m in ("WA", "UA", "WER") if any(
        m in c["pooled"] for s in summaries for c in s["conditions"].values())]
    lines = ["| model | scheme | folds | condition | n | "
             + " | ".join(f"{m} (mean ± std)" for m in metrics) + " | "
             + " | ".join(f"{m} pooled" for m in metrics) + " |",
             "|---" * (5 + 2 * len(metrics)) + "|"]
    for s in summaries:
        folds = ",".join(str(k) for k in s["folds"])
        for cond, res in s["conditions"].items():
            cells = [format_mean_std(res["mean"][m], res["std"][m]) if m in res["mean"]
                     else "-" for m in metrics]
            cells += [f"{res['pooled'][m]:.1f}" if m in res["pooled"] else "-"
                      for m in metrics]
            lines.append(f"| {s['name']} | {s['scheme']} | {folds} | {cond} | "
                         f"{res['pooled']['n']} | " + " | ".join(cells) + " |")
    if len({(s["scheme"], tuple(s["folds"])) for s in summaries}) > 1:
        lines += ["", "NOT COMPARABLE as they stand: the models were run on different "
                      "schemes or folds."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    """``python -m speechbrain_ext.reports --compare FOLDER ...``: the comparison table
    of the ``summary.json`` in each folder (a fold runner's ``cv_folder``, a study's
    model folder, or the upstream command's ``--output_folder``)."""
    import argparse
    import json
    import os

    parser = argparse.ArgumentParser(description="Put fold-runner summaries side by side.")
    parser.add_argument("--compare", nargs="+", required=True, metavar="FOLDER")
    parser.add_argument("--output", help="also write the table here")
    args = parser.parse_args(argv)
    summaries = []
    for folder in args.compare:
        path = os.path.join(folder, "summary.json")
        if not os.path.isfile(path):
            parser.error(f"{path} not found: run the fold runner (or the upstream command) "
                         "first, or its --summarize_only")
        with open(path) as f:
            summaries.append(json.load(f))
    table = format_comparison_markdown(summaries)
    print(table)
    if args.output:
        with open(args.output, "w") as f:
            f.write(table)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
