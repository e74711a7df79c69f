"""Final metrics as console tables: one row per metric and one column per stage; and, where
the images' kinds are known, one row per image kind."""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table

from nuclei.cli.console import print_table
from nuclei.data.kinds import ordered_kinds
from nuclei.metrics.image_rows import KIND_SCORES

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
#: Labels of the per-kind columns that differ from the pooled metric of the same name.
KIND_LABELS = {"iou": "IoU (mean over images)"}
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


def kinds_table(metrics: Mapping[str, float], stage: str, title: str) -> Table | None:
    """A table of ``stage``'s scores per image kind (``<stage>/map_<kind>``... from
    :func:`nuclei.metrics.image_rows.scores_by_kind`) under the row of all images (their means
    weighted by the kinds' image counts); None when ``metrics`` has no per-kind scores."""
    prefix = f"{stage}/images_"
    found = [key.removeprefix(prefix) for key in metrics if key.startswith(prefix)]
    kinds = ordered_kinds(found)
    if not kinds:
        return None
    counts = {kind: metrics[f"{prefix}{kind}"] for kind in kinds}
    total = sum(counts.values())
    table = Table(title=title)
    table.add_column("images")
    for name in KIND_SCORES:
        table.add_column(KIND_LABELS.get(name, METRIC_LABELS[name]), justify="right")
    pooled = [
        sum(counts[k] * metrics[f"{stage}/{name}_{k}"] for k in kinds) / total
        for name in KIND_SCORES
    ]
    table.add_row(
        f"all ({total:.0f})",
        *(format_metric(n, v) for n, v in zip(KIND_SCORES, pooled, strict=True)),
    )
    for kind in kinds:
        table.add_row(
            f"{kind} ({counts[kind]:.0f})",
            *(format_metric(n, metrics[f"{stage}/{n}_{kind}"]) for n in KIND_SCORES),
        )
    return table


def print_kinds(metrics: Mapping[str, float], stage: str, title: str) -> None:
    """Print :func:`kinds_table` when the metrics have per-kind scores."""
    table = kinds_table(metrics, stage, title)
    if table is not None:
        print_table(table)
