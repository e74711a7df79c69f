"""Grid-search a run's postprocessing on its validation split; store the best in the run.

    nuclei-tune outputs/train/<run>/checkpoints/last.ckpt
    nuclei-tune ckpt_path=CKPT grid.threshold=[0.4,0.5] grid.border_threshold=[0.3,0.5]

The network runs once over the run's validation split (its split.json); each combination
is then postprocessed and scored with the DSB metric, and a table of the grid is printed.
The best settings go to the run's postprocess.json (``output=`` elsewhere, ``dry_run=true``
nowhere), which ``nuclei-eval`` and ``nuclei-predict`` use for that run from then on.
``nuclei-tune SWEEP out_of_fold=true`` tunes a cross-validation sweep instead, on the
out-of-fold predictions of all its images, and stores the result in every fold run.
The default grid depends on the run's split method: marker-watershed settings for a
border-trained run, threshold and minimum area for connected components. ``conf/tune.yaml``
(``nuclei-tune --help``) lists the options.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, ListConfig, OmegaConf
from rich.table import Table

from nuclei.cli.app import App, command, user_errors
from nuclei.cli.console import print_table
from nuclei.cli.overrides import Vocabulary
from nuclei.inference.probabilities import OnDevice, resolve_device
from nuclei.instances.postprocess import PostprocessConfig
from nuclei.instances.tuning import (
    METRIC_NAMES,
    default_grid,
    grid_search,
    split_of,
    tuned_record,
    validation_maps,
)
from nuclei.runs.checkpoint import Run, load_run, postprocess_of, restore_task
from nuclei.runs.cross_validation import (
    CrossValidationError,
    cross_validations,
    out_of_fold_predictions,
)
from nuclei.runs.inherit import given_values
from nuclei.runs.run_data import build_run_datamodule, run_data_config

APP = App(
    name="nuclei-tune",
    config_name="tune",
    words=Vocabulary(
        main_key="ckpt_path",
        switches={
            "--dry-run": "dry_run=true",
            "--no-progress": "progress_bar=false",
            "--trust-checkpoint": "trust_checkpoint=true",
        },
        options={"--out": "output", "--top": "top"},
        lists={"--grid": "grid"},
    ),
)


def search_grid(section: DictConfig | None) -> dict[str, list[Any]]:
    """The ``grid.KEY=[V1,V2]`` given: ``{"threshold": [0.4, 0.5], ...}`` (a scalar is one
    value); keys left at ``???`` are not searched."""
    grid = {}
    for name, values in given_values(section).items():
        listed = OmegaConf.to_container(values) if isinstance(values, ListConfig) else values
        grid[name] = list(listed) if isinstance(listed, list | tuple) else [listed]
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


def search_and_report(
    cfg: DictConfig, maps: list, labels: list, run: Run, what: str
) -> tuple[PostprocessConfig, list[dict[str, Any]]]:
    """Search ``cfg.grid`` (else the default grid of ``run``'s split method) on the maps,
    print the table and the best settings; returns the base settings and the grid's rows."""
    base = postprocess_of(run, use_tuned=False)
    base = replace(base, split=split_of(base, run.target))
    grid = search_grid(cfg.get("grid")) or default_grid(base.split)
    rows = grid_search(maps, labels, base, grid, run.target, progress=cfg.progress_bar)
    print_table(grid_table(rows, list(grid), int(cfg.top)))
    best = rows[0]
    print(
        f"best on {len(maps)} {what} ({run.target} target, split={base.split}): "
        + ", ".join(f"{k}={v}" for k, v in best["settings"].items())
        + f" -> map {best['map']:.4f}"
    )
    return base, rows


def tune(cfg: DictConfig) -> dict[str, Any]:
    """Search ``cfg.grid`` (or the run's default grid) on the run's validation split, print
    the table, store the best; returns the tuning record (see
    :func:`nuclei.instances.tuning.tuned_record`)."""
    started = time.perf_counter()
    run = load_run(cfg.ckpt_path, trust=cfg.trust_checkpoint)
    data_cfg = run_data_config(run, eval_batch_size=cfg.get("batch_size"))
    net = OnDevice(restore_task(run), resolve_device(str(cfg.device)))
    maps, labels = validation_maps(net, build_run_datamodule(data_cfg), progress=cfg.progress_bar)
    base, rows = search_and_report(cfg, maps, labels, run, "validation images")
    elapsed = time.perf_counter() - started
    record = tuned_record(run.checkpoint_path, run.target, base, rows, len(maps), elapsed)
    if not cfg.dry_run:
        out = Path(cfg.output).expanduser() if cfg.output else run.run_dir.tuned_postprocess_file
        run.run_dir.write_json(out, record)
        print(f"written to {out}")
    return record


def tune_out_of_fold(cfg: DictConfig) -> list[dict[str, Any]]:
    """Tune each cross-validation of the sweep ``cfg.ckpt_path`` on its out-of-fold
    predictions (every image predicted by the fold model that did not train on it) and store
    the best settings in every fold run of it; returns one tuning record per configuration."""
    if cfg.output:
        raise ValueError("out_of_fold=true writes each fold run's postprocess.json: drop output=")
    records = []
    for cv in cross_validations(str(cfg.ckpt_path)):
        started = time.perf_counter()
        maps, labels, runs = [], [], []
        predictions = out_of_fold_predictions(
            cv, str(cfg.device), cfg.get("batch_size"), cfg.trust_checkpoint, cfg.progress_bar
        )
        for run, predicted in predictions:
            maps += predicted.maps
            labels += predicted.labels
            runs.append(run)
        what = f"out-of-fold images of {len(runs)} folds, {cv.label}"
        base, rows = search_and_report(cfg, maps, labels, runs[0], what)
        checkpoints = [run.checkpoint_path for run in runs]
        elapsed = time.perf_counter() - started
        record = tuned_record(
            checkpoints, runs[0].target, base, rows, len(maps), elapsed, tuned_on="out-of-fold"
        )
        record["configuration"] = cv.label
        records.append(record)
        if not cfg.dry_run:
            for run in runs:
                run.run_dir.write_json(run.run_dir.tuned_postprocess_file, record)
            print(f"written to the postprocess.json of {len(runs)} fold runs")
    return records


@hydra.main(version_base="1.3", config_path="pkg://nuclei.conf", config_name="tune")
def _hydra_main(cfg: DictConfig) -> None:
    with user_errors(APP.name, CrossValidationError):
        if cfg.get("out_of_fold"):
            tune_out_of_fold(cfg)
        else:
            tune(cfg)


main = command(
    APP, _hydra_main, "exits with status 2 and the reason on a bad checkpoint, data or option."
)


if __name__ == "__main__":
    main()
