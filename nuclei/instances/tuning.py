"""Grid-search a run's postprocessing on its validation split and store the best settings.

``scripts/tune_postprocess.py`` is the command line. The network runs once over the
validation images (the run's own ``split.json``); every combination of the grid is then
only postprocessing and scoring, on the cached probability maps. The best combination (by
the DSB ``map``) is written to ``<run>/postprocess.json``, which ``nuclei-eval`` and
``nuclei-predict`` then use for that run (``tuned_postprocess=false`` ignores it).

These settings are chosen on the validation split, so the validation ``map`` after tuning
is slightly optimistic; report a test split, or compare models tuned the same way.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from nuclei.instances.postprocess import PostprocessConfig, instances_from_maps, resolve_split
from nuclei.metrics.dsb import DSBInstanceMetric
from nuclei.runs.atomic import atomic_write_text
from nuclei.runs.checkpoint import Run, restore_task

__all__ = [
    "METRIC_NAMES",
    "default_grid",
    "grid_search",
    "validation_maps",
    "write_tuned",
]

#: Metrics of each grid row, from :class:`nuclei.metrics.DSBInstanceMetric`.
METRIC_NAMES: tuple[str, ...] = ("map", "ap50", "ap75", "f1", "n_merged", "n_split")


def default_grid(split: str) -> dict[str, list[Any]]:
    """The settings searched for a resolved ``split`` method (``markers``, ``none``...)."""
    if split == "markers":
        return {
            "threshold": [0.4, 0.5],
            "marker_threshold": [0.5, 0.7, 0.9],
            "border_threshold": [0.1, 0.15, 0.2, 0.3, 0.5],
            "flood": ["probability", "distance"],
        }
    if split == "watershed":
        return {"threshold": [0.4, 0.5, 0.6], "min_distance": [2, 3, 5], "h": [0.5, 1.0, 2.0]}
    return {"threshold": [0.3, 0.4, 0.5, 0.6, 0.7], "min_area": [5, 10, 20]}


def _progress(enabled: bool, what: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{what}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
    )


@torch.inference_mode()
def validation_maps(
    run: Run, datamodule: Any, progress: bool = True
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The run's probability maps (C, H, W) and true labels (H, W) on its validation split.

    ``datamodule`` is the run's data module (see ``nuclei.cli.evaluate.evaluation_data_config``);
    padded whole images (crop mode) are cropped back to their own size.
    """
    task = restore_task(run)
    datamodule.setup("validate")
    maps: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    loader = datamodule.val_dataloader()
    with _progress(progress, "Predicting validation images") as bar:
        job = bar.add_task("predict", total=len(loader.dataset))
        for batch in loader:
            probs = torch.sigmoid(task(batch["image"])).float().numpy()
            truth = batch["labels"].numpy()
            sizes = batch["size"].tolist() if "size" in batch else [truth.shape[-2:]] * len(truth)
            for prob, label, (height, width) in zip(probs, truth, sizes, strict=True):
                maps.append(prob[:, :height, :width].astype(np.float32))
                labels.append(label[:height, :width])
            bar.advance(job, len(probs))
    return maps, labels


def grid_search(
    maps: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    base: PostprocessConfig,
    grid: Mapping[str, Sequence[Any]],
    target: str = "binary",
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Score every combination of ``grid`` (settings on top of ``base``) on the images.

    Returns one row per combination, best ``map`` first: ``{"settings": {...}, "map": ...,
    "ap50": ..., "ap75": ..., "f1": ..., "n_merged": ..., "n_split": ...}``.
    """
    names = list(grid)
    combos = list(itertools.product(*(grid[name] for name in names)))
    rows = []
    with _progress(progress, "Scoring postprocessing settings") as bar:
        job = bar.add_task("grid", total=len(combos))
        for values in combos:
            settings = dict(zip(names, values, strict=True))
            config = replace(base, **settings)
            metric = DSBInstanceMetric()
            predicted = [instances_from_maps(m, config, target) for m in maps]
            metric.update(predicted, list(labels))
            scores = {k: float(v) for k, v in metric.compute().items()}
            rows.append({"settings": settings, **{k: scores[k] for k in METRIC_NAMES}})
            bar.advance(job)
    rows.sort(key=lambda row: row["map"], reverse=True)
    return rows


def write_tuned(
    path: str | Path,
    run: Run,
    base: PostprocessConfig,
    rows: Sequence[Mapping[str, Any]],
    n_images: int,
    seconds: float,
) -> Path:
    """Write ``postprocess.json``: the best settings (all of them), its scores and the grid."""
    best = rows[0]
    settings = asdict(replace(base, **best["settings"]))
    record = {
        "settings": settings,
        "checkpoint": str(run.checkpoint_path.resolve()),
        "target": run.target,
        "split": "val",
        "n_images": n_images,
        "best": {k: best[k] for k in METRIC_NAMES},
        "grid": [dict(row) for row in rows],
        "tuned_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "wall_time_s": round(seconds, 1),
    }
    return atomic_write_text(path, json.dumps(record, indent=2) + "\n")


def split_of(base: PostprocessConfig, target: str) -> str:
    """The split method ``base`` resolves to for a model trained on ``target``."""
    return resolve_split(base.split, target)
