"""Final-metrics output of a run: a console table and ``metrics.json``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

METRIC_LABELS = {
    "loss": "BCE loss",
    "acc": "pixel accuracy",
    "iou": "IoU (foreground)",
    "dice": "Dice",
}


def metrics_table(metrics: Mapping[str, float], title: str) -> Table:
    """A table of ``stage/name`` metrics, one row per stage (val, test), one column each."""
    stages = sorted({key.split("/", 1)[0] for key in metrics if "/" in key})
    names = [n for n in METRIC_LABELS if any(f"{s}/{n}" in metrics for s in stages)]
    table = Table(title=title)
    table.add_column("split")
    for name in names:
        table.add_column(METRIC_LABELS[name], justify="right")
    for stage in stages:
        row = [
            f"{metrics[f'{stage}/{n}']:.4f}" if f"{stage}/{n}" in metrics else "-" for n in names
        ]
        table.add_row(stage, *row)
    return table


def print_metrics(metrics: Mapping[str, float], title: str) -> None:
    """Print :func:`metrics_table` to the terminal."""
    Console().print(metrics_table(metrics, title))


def write_metrics_json(path: str | Path, metrics: Mapping[str, Any]) -> Path:
    """Write metrics (and run facts) as indented JSON, creating the folder if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(metrics), indent=2, sort_keys=True) + "\n")
    return path
