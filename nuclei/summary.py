"""Compare the runs of a sweep: ``nuclei-summarize SWEEP_DIR`` (or scripts/summarize.py).

Reads every run of a Hydra multirun folder (its ``.hydra/overrides.yaml``, ``metrics.json``
and TensorBoard ``val/iou`` curve), prints a table sorted by ``val/iou``, and writes
``summary.csv``, ``summary.md`` and ``val_iou.png`` (the validation IoU curves of all runs).
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
from PIL import Image, ImageDraw, ImageFont
from rich.console import Console
from rich.table import Table
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

SORT_METRIC = "val/iou"
CURVE_TAG = "val/iou"
METRIC_COLUMNS = ("val/iou", "val/loss", "val/acc", "val/dice", "val/map")
FACT_COLUMNS = ("epochs", "wall_time_s")
#: Line colours of the plot, one per run (repeating).
PALETTE = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)


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
    """Draw every run's validation IoU against the training step as a PNG (Pillow)."""
    width, height = size
    left, right, top, bottom = 70, 240, 40, 60
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    points = [p for run in runs for p in run.curve]
    max_step = max((step for step, _ in points), default=1) or 1
    low = min(0.0, min((v for _, v in points), default=0.0))
    high = max(1.0, max((v for _, v in points), default=1.0))

    def xy(step: float, value: float) -> tuple[float, float]:
        x = left + (width - left - right) * step / max_step
        y = height - bottom - (height - top - bottom) * (value - low) / (high - low)
        return x, y

    _, rows = table_rows(runs)
    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    for tick in range(6):
        value = low + (high - low) * tick / 5
        x, y = xy(0, value)
        draw.line([x - 4, y, x, y], fill="black")
        draw.text((x - 40, y - 6), f"{value:.1f}", fill="black", font=font)
        step = max_step * tick / 5
        sx, sy = xy(step, low)
        draw.line([sx, sy, sx, sy + 4], fill="black")
        draw.text((sx - 10, sy + 8), f"{step:.0f}", fill="black", font=font)
    draw.text((width // 2 - 80, height - 30), "training step", fill="black", font=font)
    draw.text((left, 12), f"{CURVE_TAG} of every run", fill="black", font=font)
    for index, run in enumerate(runs):
        colour = PALETTE[index % len(PALETTE)]
        line = [xy(step, value) for step, value in run.curve]
        if len(line) > 1:
            draw.line(line, fill=colour, width=2)
        for x, y in line:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
        legend_y = top + 16 * index
        draw.line([width - right + 12, legend_y + 6, width - right + 32, legend_y + 6], colour, 3)
        label = f"{run.name} {rows[index][1]}"[:34]
        draw.text((width - right + 38, legend_y), label, fill="black", font=font)
    image.save(path)
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
