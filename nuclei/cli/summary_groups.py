"""What ``nuclei-summarize`` shows of groups of runs: their table, the comparison of two
groups, the legend of evaluation tags, and the files and error-bar plots they go into.

The groups and comparisons themselves are :mod:`nuclei.runs.sweep_groups`'s.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path

from nuclei.metrics.intervals import Interval
from nuclei.runs.sweep import RunSummary
from nuclei.runs.sweep_groups import Comparison, Group


def number(value: float) -> str:
    """A value with four decimals; ``-`` for NaN."""
    return "-" if math.isnan(value) else f"{value:.4f}"


def bounds(interval: Interval) -> str:
    """``[low, high]`` of an interval; ``-`` when there is none (one value)."""
    if math.isnan(interval.low):
        return "-"
    return f"[{interval.low:.4f}, {interval.high:.4f}]"


def spread(interval: Interval, runs: int) -> str:
    """``mean ± std [low, high]``, noting how many runs when not all of the group recorded
    the metric."""
    text = f"{number(interval.mean)} ± {number(interval.std)} {bounds(interval)}"
    return text if interval.n == runs else f"{text} (n={interval.n})"


def recorded(groups: Sequence[Group], metrics: Sequence[str]) -> list[str]:
    """The metrics that at least one run of the groups recorded."""
    return [m for m in metrics if any(group.values(m) for group in groups)]


def group_table(
    groups: Sequence[Group], metrics: Sequence[str], confidence: float = 0.95
) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the groups table: label, runs, then per metric
    ``mean ± std [low, high]``."""
    rows = []
    for group in groups:
        row = [group.label, str(len(group.runs))]
        for metric in metrics:
            interval = group.interval(metric, confidence)
            row.append(spread(interval, len(group.runs)) if interval else "-")
        rows.append(row)
    return ["group", "n", *metrics], rows


def write_csv(header: Sequence[str], rows: Sequence[Sequence[object]], path: Path) -> Path:
    """A table as CSV."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def markdown_lines(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A table as Markdown lines."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def write_groups_csv(
    groups: Sequence[Group], metrics: Sequence[str], path: Path, confidence: float = 0.95
) -> Path:
    """The groups as CSV, in numbers: per metric its n, mean, std, low and high."""
    header = ["group", "runs"]
    for metric in metrics:
        header += [f"{metric} {part}" for part in ("n", "mean", "std", "low", "high")]
    rows = []
    for group in groups:
        row: list[object] = [group.label, len(group.runs)]
        for metric in metrics:
            interval = group.interval(metric, confidence)
            parts = (interval.mean, interval.std, interval.low, interval.high) if interval else ()
            row += [interval.n if interval else 0, *(_plain(v) for v in parts)]
            row += [""] * (4 - len(parts))
        rows.append(row)
    return write_csv(header, rows, path)


def _plain(value: float) -> str:
    return "" if math.isnan(value) else repr(value)


def tag_legend(runs: Sequence[RunSummary]) -> list[str]:
    """``tag: description`` of every evaluation tag of the runs (the first run's words)."""
    described: dict[str, str] = {}
    for run in runs:
        for tag, text in run.tags.items():
            described.setdefault(tag, text)
    return [f"{tag}: {described[tag]}" for tag in sorted(described)]


def write_groups_markdown(
    title: str,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    legend: Sequence[str],
    path: Path,
) -> Path:
    """The groups table as Markdown under its title, followed by the legend of evaluation
    tags."""
    lines = [title, "", *markdown_lines(header, rows)]
    if legend:
        lines += ["", "Evaluation tags:", "", *(f"- `{line}`" for line in legend)]
    path.write_text("\n".join(lines) + "\n")
    return path


def comparison_table(comparisons: Sequence[Comparison]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the comparison table, one row per metric."""
    percent = f"{comparisons[0].difference.confidence:.0%}" if comparisons else "95%"
    header = ["metric", "pairs", "mean B-A", "std", f"{percent} interval"]
    rows = [
        [
            c.metric,
            str(c.difference.n),
            number(c.difference.mean),
            number(c.difference.std),
            bounds(c.difference),
        ]
        for c in comparisons
    ]
    return header, rows


def write_comparison(comparisons: Sequence[Comparison], folder: Path) -> list[Path]:
    """``compare.json`` and ``compare.md`` of the comparisons (one per metric) of two groups."""
    first = comparisons[0]
    record = {
        "a": first.a,
        "b": first.b,
        "difference": "b - a, paired by seed and data.split.fold",
        "metrics": {c.metric: c.as_dict() for c in comparisons},
    }
    as_json = folder / "compare.json"
    as_json.write_text(json.dumps(record, indent=2) + "\n")
    lines = [f"B - A, paired by seed and fold: A = `{first.a}`, B = `{first.b}`", ""]
    lines += markdown_lines(*comparison_table(comparisons))
    unmatched = list(dict.fromkeys(line for c in comparisons for line in c.unmatched))
    if unmatched:
        lines += ["", "Left out (no run of the same seed and fold in the other group):"]
        lines += [f"- {line}" for line in unmatched]
    as_markdown = folder / "compare.md"
    as_markdown.write_text("\n".join(lines) + "\n")
    return [as_json, as_markdown]


def plot_groups(
    groups: Sequence[Group],
    metric: str,
    path: Path,
    confidence: float = 0.95,
    size: tuple[int, int] = (900, 560),
) -> Path:
    """Plot each group's mean of ``metric`` with its interval as an error bar, and its runs
    as dots, groups along the x axis, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    dpi = 100
    figure, axes = plt.subplots(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    for x, group in enumerate(groups):
        values = group.values(metric)
        offsets = [
            0.15 * (i - (len(values) - 1) / 2) / max(len(values), 1) for i in range(len(values))
        ]
        axes.scatter([x + 0.2 + o for o in offsets], values, s=18, color="tab:gray", zorder=2)
        interval = group.interval(metric, confidence)
        if interval is None:
            continue
        below, above = interval.mean - interval.low, interval.high - interval.mean
        error = [[0.0], [0.0]] if math.isnan(below) else [[below], [above]]
        axes.errorbar([x], [interval.mean], yerr=error, fmt="o", capsize=6, color="tab:blue")
    axes.set_xticks(range(len(groups)), [group.label[:40] for group in groups])
    axes.tick_params(axis="x", labelrotation=15 if len(groups) > 3 else 0)
    axes.set_xlim(-0.5, len(groups) - 0.5)
    axes.set_ylabel(metric)
    axes.set_title(f"{metric}: mean and {confidence:.0%} interval of each group; dots: runs")
    axes.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    return path
