"""Grid-search a run's postprocessing on its validation split; store the best in the run.

    nuclei-tune outputs/train/<run>/checkpoints/last.ckpt
    nuclei-tune CKPT --grid threshold=0.4,0.5 border_threshold=0.3,0.5

The network runs once over the run's validation split (its split.json); each combination
is then postprocessed and scored with the DSB metric, and a table of the grid is printed.
The best settings go to the run's postprocess.json (``--out`` elsewhere, ``--dry-run``
nowhere), which ``nuclei-eval`` and ``nuclei-predict`` use for that run from then on.
The default grid depends on the run's split method: marker-watershed settings for a
border-trained run, threshold and minimum area for connected components.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from nuclei.instances.postprocess import PostprocessConfig
from nuclei.instances.tuning import (
    METRIC_NAMES,
    default_grid,
    grid_search,
    split_of,
    tuned_record,
    validation_maps,
)
from nuclei.runs.checkpoint import CheckpointError, load_run, postprocess_of, restore_task
from nuclei.runs.run_data import build_datamodule, run_data_config


def parse_value(text: str) -> Any:
    """``0.5`` -> 0.5, ``3`` -> 3, ``true`` -> True, anything else stays a string."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["threshold=0.4,0.5", ...]`` -> ``{"threshold": [0.4, 0.5], ...}``."""
    known = set(PostprocessConfig.__dataclass_fields__)
    grid: dict[str, list[Any]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not values or name not in known:
            raise SystemExit(
                f"--grid {item!r}: expected KEY=V1,V2,... with KEY one of {sorted(known)}"
            )
        grid[name] = [parse_value(v) for v in values.split(",")]
    return grid


def grid_table(rows: list[dict[str, Any]], names: list[str], top: int) -> Table:
    """The grid as a table, best map first (``top`` rows; 0 for all)."""
    table = Table(title=f"Postprocessing grid ({len(rows)} settings, best map first)")
    table.add_column("#", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    for metric in METRIC_NAMES:
        table.add_column(metric, justify="right")
    shown = rows if top <= 0 else rows[:top]
    for rank, row in enumerate(shown, start=1):
        settings = [str(row["settings"][name]) for name in names]
        scores = [f"{row[m]:.0f}" if m.startswith("n_") else f"{row[m]:.4f}" for m in METRIC_NAMES]
        table.add_row(str(rank), *settings, *scores, style="bold green" if rank == 1 else None)
    return table


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="nuclei-tune", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a checkpoint of the run (e.g. .../last.ckpt)")
    parser.add_argument(
        "--grid", nargs="*", default=[], metavar="KEY=V1,V2", help="override the default grid"
    )
    parser.add_argument("--out", help="where to write the best settings (default: the run's)")
    parser.add_argument("--dry-run", action="store_true", help="print the table, write nothing")
    parser.add_argument("--top", type=int, default=20, help="table rows to print (0: all)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--trust-checkpoint", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    try:
        run = load_run(args.checkpoint, trust=args.trust_checkpoint)
    except CheckpointError as exc:
        print(f"nuclei-tune: {exc}", file=sys.stderr)
        return 2
    base = postprocess_of(run, use_tuned=False)
    base = replace(base, split=split_of(base, run.target))
    grid = parse_grid(args.grid) or default_grid(base.split)
    datamodule = build_datamodule(run_data_config(run))
    maps, labels = validation_maps(restore_task(run), datamodule, progress=not args.no_progress)
    rows = grid_search(maps, labels, base, grid, run.target, progress=not args.no_progress)
    Console(width=max(120, Console().width)).print(grid_table(rows, list(grid), args.top))
    best = rows[0]
    print(
        f"best on {len(maps)} validation images ({run.target} target, split={base.split}): "
        + ", ".join(f"{k}={v}" for k, v in best["settings"].items())
        + f" -> map {best['map']:.4f}"
    )
    if not args.dry_run:
        out = Path(args.out) if args.out else run.run_dir.tuned_postprocess_file
        elapsed = time.perf_counter() - started
        record = tuned_record(run.checkpoint_path, run.target, base, rows, len(maps), elapsed)
        run.run_dir.write_json(out, record)
        print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
