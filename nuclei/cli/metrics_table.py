"""Final metrics as a console table: one row per metric, one column per stage."""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table

from nuclei.cli.console import print_table

METRIC_LABELS = {
    "loss": "BCE loss",
    "acc": "pixel accuracy",
    "iou": "IoU (foreground)",
    "dice": "Dice",
    "map": "map (DSB)",
    "ap50": "ap50",
    "ap75": "ap75",
    "f1": "F1@0.5",
    "count_error": "count error",
    "n_split": "split nuclei",
    "n_merged": "merged nuclei",
}
#: Metrics that count things, shown without decimals.
COUNT_METRICS = frozenset({"n_split", "n_merged"})


def format_metric(name: str, value: float) -> str:
    """A metric value as shown in tables: counts as integers, the rest with 4 decimals."""
    return f"{value:.0f}" if name in COUNT_METRICS else f"{value:.4f}"


def metrics_table(metrics: Mapping[str, float], title: str) -> Table:
    """A table of ``stage/name`` metrics: one row per metric, one column per stage (val, test)."""
    found = {key.split("/", 1)[0] for key in metrics if "/" in key}
    stages = [s for s in ("train", "val", "test") if s in found] + sorted(
        found - {"train", "val", "test"}
    )
    names = [n for n in METRIC_LABELS if any(f"{s}/{n}" in metrics for s in stages)]
    table = Table(title=title)
    table.add_column("metric")
    for stage in stages:
        table.add_column(stage, justify="right")
    for name in names:
        row = [
            format_metric(name, metrics[f"{stage}/{name}"]) if f"{stage}/{name}" in metrics else "-"
            for stage in stages
        ]
        table.add_row(METRIC_LABELS[name], *row)
    return table


def print_metrics(metrics: Mapping[str, float], title: str) -> None:
    """Print :func:`metrics_table`, whole whatever the output (:func:`print_table`)."""
    print_table(metrics_table(metrics, title))
