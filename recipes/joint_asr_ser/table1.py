"""Table 1 and Fig. 2 of Bansal et al. (2023) from the fold runner's summaries.

Table 1: WER and accuracy of the baselines and the joint model, trained clean and
on noise, per test condition, with the paper's "Rel Imp" columns (relative for WER,
points for accuracy). Fig. 2: each model against the clean-trained baseline.

Example
-------
>>> relative_wer_improvement(16.8, 15.0), accuracy_improvement(71.9, 74.2)   # Table 1, clean
(10.7, 2.3)
"""

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def relative_wer_improvement(baseline, other):
    """Relative WER reduction in percent, ``100 * (baseline - other) / baseline``, 1 decimal."""
    return round(100.0 * (baseline - other) / baseline, 1)


def accuracy_improvement(baseline, other):
    """Accuracy gain in percentage points, 1 decimal: what the paper's SER "Rel Imp" is."""
    return round(other - baseline, 1)


def _pooled(summaries, model, condition, metric):
    """Pooled metric of ``model`` under ``condition``, or None when not run."""
    summary = summaries.get(model)
    if summary is None or condition not in summary["conditions"]:
        return None
    return summary["conditions"][condition]["pooled"].get(metric)


def _cells(base, other, improvement):
    if base is None or other is None:
        return [f"{v:.1f}" if v is not None else "n/a" for v in (base, other)] + ["n/a"]
    return [f"{base:.1f}", f"{other:.1f}", f"{improvement(base, other):.1f}"]


def format_joint_table(summaries, conditions, labels=None, accuracy="WA"):
    """Markdown of Bansal et al.'s Table 1 from fold-runner summaries.

    ``summaries`` maps ``asr``, ``joint``, ``ser``, ``asr_noisy``, ``joint_noisy``,
    ``ser_noisy`` to :func:`speechbrain_ext.fold_runner.summarize_folds` results (missing
    models give ``n/a``). WER columns: baseline = ``asr``; accuracy columns:
    baseline = ``ser`` (pooled ``accuracy`` metric, WA by default); the joint model
    is in both. Rel Imp as in the paper: relative for WER, points for accuracy.

    Example
    -------
    >>> def summary(**metrics):
    ...     return {"conditions": {"clean": {"pooled": metrics}}}
    >>> table = format_joint_table({"asr": summary(WER=16.8), "joint": summary(WER=15.0, WA=74.2),
    ...                             "ser": summary(WA=71.9)}, ["clean"])
    >>> table.splitlines()[-1]
    '| clean | 16.8 | 15.0 | 10.7 | n/a | n/a | n/a | 71.9 | 74.2 | 2.3 | n/a | n/a | n/a |'
    """
    labels = labels or {}
    lines = [
        f"| Test | WER, trained clean: Baseline | Joint | Rel Imp % | WER, trained on noise: "
        f"Baseline | Joint | Rel Imp % | {accuracy}, trained clean: Baseline | Joint | Rel Imp "
        f"(points) | {accuracy}, trained on noise: Baseline | Joint | Rel Imp (points) |",
        "|---" * 13 + "|",
    ]
    for cond in conditions:
        cells = []
        for suffix in ("", "_noisy"):
            cells += _cells(_pooled(summaries, "asr" + suffix, cond, "WER"),
                            _pooled(summaries, "joint" + suffix, cond, "WER"),
                            relative_wer_improvement)
        for suffix in ("", "_noisy"):
            cells += _cells(_pooled(summaries, "ser" + suffix, cond, accuracy),
                            _pooled(summaries, "joint" + suffix, cond, accuracy),
                            accuracy_improvement)
        lines.append(f"| {labels.get(cond, cond)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_joint_comparison(summaries, conditions, path, labels=None, accuracy="WA"):
    """Bansal et al.'s Fig. 2: each model against the clean-trained baseline, per condition.

    (a) ASR: relative WER improvement (%) over ``asr``; (b) SER: accuracy gain
    (points) over ``ser``; bars for the noise-trained baseline, the clean-trained
    joint model and the noise-trained joint model (those that were run).

    Example
    -------
    >>> import tempfile, os
    >>> def summary(**metrics):
    ...     return {"conditions": {"clean": {"pooled": metrics}}}
    >>> path = os.path.join(tempfile.mkdtemp(), "fig2.png")
    >>> plot_joint_comparison({"asr": summary(WER=20.0), "joint": summary(WER=15.0, WA=70.0),
    ...                        "ser": summary(WA=60.0)}, ["clean"], path)
    {'asr': {'joint': [25.0]}, 'ser': {'joint': [10.0]}}
    >>> os.path.getsize(path) > 0
    True
    """
    labels = labels or {}
    panels = {"asr": ("WER", relative_wer_improvement, "relative WER improvement (%)"),
              "ser": (accuracy, accuracy_improvement, f"{accuracy} gain (points)")}
    names = {"_noisy": "baseline, trained on noise", "joint": "joint, trained clean",
             "joint_noisy": "joint, trained on noise"}
    values = {}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for ax, (task, (metric, improvement, ylabel)) in zip(axes, panels.items()):
        values[task] = {}
        for model in ("_noisy", "joint", "joint_noisy"):
            name = task + model if model == "_noisy" else model
            bars = []
            for cond in conditions:
                base = _pooled(summaries, task, cond, metric)
                other = _pooled(summaries, name, cond, metric)
                bars.append(None if base is None or other is None else improvement(base, other))
            if any(b is not None for b in bars):
                values[task][name] = bars
        width = 0.8 / max(1, len(values[task]))
        for k, (name, bars) in enumerate(values[task].items()):
            xs = [i + (k - (len(values[task]) - 1) / 2) * width for i in range(len(conditions))]
            ax.bar(xs, [b if b is not None else 0.0 for b in bars], width,
                   label=names[name[len(task):] if name.startswith(task) else name])
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(conditions)), [labels.get(c, c) for c in conditions],
                      rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(ylabel)
        ax.set_title(f"({'a' if task == 'asr' else 'b'}) {task.upper()}: against the "
                     "clean-trained baseline", fontsize=9)
        if values[task]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return values
