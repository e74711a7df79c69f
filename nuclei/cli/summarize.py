"""Compare the runs of a sweep: ``nuclei-summarize SWEEP_DIR`` (or ``sweep=SWEEP_DIR``).

Reads every run of a Hydra multirun folder (its overrides, final metrics and the TensorBoard
curve of its objective, see :mod:`nuclei.runs.sweep`), prints a table sorted by the
objective (``val/iou`` unless the runs set ``objective.metric``), and writes
``summary.csv``, ``summary.md`` and ``<objective>.png`` (e.g. ``val_iou.png``: the curves of
all runs, drawn with matplotlib) into ``output`` (null: the sweep folder); see
``conf/summarize.yaml`` (``nuclei-summarize --help``).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig
from rich.table import Table

from nuclei.cli.app import App, command, user_errors
from nuclei.cli.console import print_table
from nuclei.cli.overrides import Vocabulary
from nuclei.runs.sweep import RunSummary, summarize

#: Validation metrics shown after the objective (as ``val/<name>``), when runs recorded them.
METRIC_NAMES = ("loss", "acc", "iou", "dice", "map")
FACT_COLUMNS = ("epochs", "wall_time_s")
#: ``nuclei-summarize SWEEP --out DIR --no-progress`` (the argparse spellings) still work.
OLD_SPELLINGS = Vocabulary(
    main_key="sweep", switches={"--no-progress": "progress_bar=false"}, options={"--out": "output"}
)
APP = App(name="nuclei-summarize", config_name="summarize", words=OLD_SPELLINGS)


def metric_columns(runs: Sequence[RunSummary]) -> list[str]:
    """The objective first, then the other validation metrics."""
    objective = runs[0].objective.metric if runs else None
    others = [f"val/{name}" for name in METRIC_NAMES]
    return [objective, *(m for m in others if m != objective)] if objective else []


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
    metrics = metric_columns(runs)
    header = ["run", "overrides", *metrics, *FACT_COLUMNS]
    shared = set.intersection(*(set(run.overrides) for run in runs)) if len(runs) > 1 else set()
    rows = [
        [
            run.name,
            " ".join(o for o in run.overrides if o not in shared),
            *(_cell(run.value(k)) for k in (*metrics, *FACT_COLUMNS)),
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
    """Plot every run's objective against the training step, with a legend, as a PNG."""
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
    tag = runs[0].objective.metric if runs else ""
    axes.set_ylabel(tag)
    axes.set_title(f"{tag} of every run")
    axes.grid(alpha=0.3)
    if runs:
        axes.legend(fontsize="small", loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    return path


def print_runs(runs: Sequence[RunSummary], title: str) -> None:
    """Print the comparison table, whole even in a file or a narrow terminal."""
    header, rows = table_rows(runs)
    table = Table(title=title)
    for column in header:
        table.add_column(column, justify="left" if column in ("run", "overrides") else "right")
    for row in rows:
        table.add_row(*row)
    print_table(table)


def summarize_sweep(sweep: Path, output: Path | None = None) -> int:
    """Print the table of the sweep's runs and write its files; returns the exit status
    (1 when no run is found)."""
    runs = summarize(sweep)
    if not runs:
        print(f"{sweep}: no runs found (no run folder with saved overrides below it)")
        return 1
    out = output or sweep
    out.mkdir(parents=True, exist_ok=True)
    objective = runs[0].objective
    print_runs(runs, title=f"{len(runs)} runs of {sweep}, by {objective.metric}")
    for written in (
        write_csv(runs, out / "summary.csv"),
        write_markdown(runs, out / "summary.md"),
        plot_curves(runs, out / f"{objective.metric.replace('/', '_')}.png"),
    ):
        print(f"wrote {written}")
    return 0


@hydra.main(version_base="1.3", config_path="pkg://nuclei.conf", config_name="summarize")
def _hydra_main(cfg: DictConfig) -> None:
    with user_errors(APP.name):
        output = Path(cfg.output).expanduser() if cfg.output else None
        status = summarize_sweep(Path(cfg.sweep).expanduser(), output)
    if status:
        raise SystemExit(status)


main = command(APP, _hydra_main, "exit status 1 when the folder holds no runs.")


if __name__ == "__main__":
    main()
