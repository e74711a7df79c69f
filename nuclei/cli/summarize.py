"""Compare the runs of a sweep: ``nuclei-summarize SWEEP_DIR`` (or scripts/summarize.py).

Reads every run of a Hydra multirun folder (its ``.hydra/overrides.yaml``, ``metrics.json``
and TensorBoard ``val/iou`` curve), prints a table sorted by ``val/iou``, and writes
``summary.csv``, ``summary.md`` and ``val_iou.png`` (the validation IoU curves of all runs,
drawn with matplotlib).
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

SORT_METRIC = "val/iou"
CURVE_TAG = "val/iou"
METRIC_COLUMNS = ("val/iou", "val/loss", "val/acc", "val/dice", "val/map")
FACT_COLUMNS = ("epochs", "wall_time_s")


@dataclass
class RunSummary:
    """One run of a sweep: where it is, what it overrode, what it reached."""

    name: str
    overrides: list[str]
    metrics: dict[str, Any]
    curve: list[tuple[int, float]] = field(default_factory=list)

    def value(self, key: str) -> Any:
        """A metric or fact of the run (None when the run did not record it)."""
        return self.metrics.get(key)


def find_runs(sweep_dir: str | Path) -> list[Path]:
    """Run folders under ``sweep_dir``: those holding ``.hydra/overrides.yaml``."""
    root = Path(sweep_dir)
    runs = [path.parent.parent for path in root.rglob(".hydra/overrides.yaml")]
    return sorted(runs, key=lambda p: [int(s) if s.isdigit() else s for s in p.parts])


def read_curve(run_dir: Path, tag: str = CURVE_TAG) -> list[tuple[int, float]]:
    """(step, value) of a TensorBoard scalar in the run's event files; [] if it is absent."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    if tag not in events.Tags().get("scalars", []):
        return []
    return [(event.step, event.value) for event in events.Scalars(tag)]


def read_run(run_dir: Path, sweep_dir: Path) -> RunSummary:
    """Overrides, final metrics and validation-IoU curve of one run folder."""
    overrides = OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "overrides.yaml"))
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    name = str(run_dir.relative_to(sweep_dir)) if run_dir != sweep_dir else run_dir.name
    return RunSummary(name, [str(o) for o in overrides or []], metrics, read_curve(run_dir))


def summarize(sweep_dir: str | Path) -> list[RunSummary]:
    """Every run of a sweep, best ``val/iou`` first (runs without metrics last)."""
    root = Path(sweep_dir)
    runs = [read_run(run_dir, root) for run_dir in find_runs(root)]
    return sorted(runs, key=lambda r: -(r.value(SORT_METRIC) or float("-inf")))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def table_rows(runs: Sequence[RunSummary]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the comparison table (one row per run).

    The overrides column shows what differs between runs; overrides shared by all are left out.
    """
    header = ["run", "overrides", *METRIC_COLUMNS, *FACT_COLUMNS]
    shared = set.intersection(*(set(run.overrides) for run in runs)) if len(runs) > 1 else set()
    rows = [
        [
            run.name,
            " ".join(o for o in run.overrides if o not in shared),
            *(_cell(run.value(k)) for k in (*METRIC_COLUMNS, *FACT_COLUMNS)),
        ]
        for run in runs
    ]
    return header, rows


def write_csv(runs: Sequence[RunSummary], path: Path) -> Path:
    """The table as CSV."""
    header, rows = table_rows(runs)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_markdown(runs: Sequence[RunSummary], path: Path) -> Path:
    """The table as a Markdown table."""
    header, rows = table_rows(runs)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def plot_curves(runs: Sequence[RunSummary], path: Path, size: tuple[int, int] = (900, 560)) -> Path:
    """Plot every run's validation IoU against the training step, with a legend, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    dpi = 100
    figure, axes = plt.subplots(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    _, rows = table_rows(runs)
    for run, row in zip(runs, rows, strict=True):
        steps = [step for step, _ in run.curve]
        values = [value for _, value in run.curve]
        axes.plot(steps, values, marker="o", markersize=3, label=f"{run.name} {row[1]}"[:48])
    axes.set_xlabel("training step")
    axes.set_ylabel(CURVE_TAG)
    axes.set_title(f"{CURVE_TAG} of every run")
    axes.grid(alpha=0.3)
    if runs:
        axes.legend(fontsize="small", loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    return path


def print_table(runs: Sequence[RunSummary], title: str) -> None:
    """Print the comparison table to the terminal."""
    header, rows = table_rows(runs)
    table = Table(title=title)
    for column in header:
        table.add_column(column, justify="left" if column in ("run", "overrides") else "right")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: summarize a sweep folder; returns the exit status."""
    parser = argparse.ArgumentParser(prog="nuclei-summarize", description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="a multirun folder (hydra.sweep.dir)")
    parser.add_argument(
        "--out", type=Path, default=None, help="where to write the files (default: sweep_dir)"
    )
    args = parser.parse_args(argv)
    runs = summarize(args.sweep_dir)
    if not runs:
        print(f"{args.sweep_dir}: no runs found (no */.hydra/overrides.yaml)")
        return 1
    out = args.out or args.sweep_dir
    out.mkdir(parents=True, exist_ok=True)
    print_table(runs, title=f"{len(runs)} runs of {args.sweep_dir}, by {SORT_METRIC}")
    for written in (
        write_csv(runs, out / "summary.csv"),
        write_markdown(runs, out / "summary.md"),
        plot_curves(runs, out / "val_iou.png"),
    ):
        print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
