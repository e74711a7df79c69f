"""Grid-search a run's postprocessing on its validation split and store the best settings.

``nuclei-tune`` is the command line. The network runs once over the validation images (the
run's own split); every combination of the grid is then only postprocessing and scoring, on
the cached probability maps. The best combination (by the DSB ``map``) is written to the
run's tuned-postprocessing file, which ``nuclei-eval`` and ``nuclei-predict`` then use for
that run (``tuned_postprocess=false`` ignores it).

These settings are chosen on the validation split, so the validation ``map`` after tuning
is slightly optimistic; report a test split, or compare models tuned the same way.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nuclei.data.batches import native_labels, native_maps
from nuclei.instances.postprocess import PostprocessConfig, instances_from_maps, resolve_split
from nuclei.metrics.dsb import DSBInstanceMetric
from nuclei.progress import progress_bar

__all__ = [
    "METRIC_NAMES",
    "default_grid",
    "grid_search",
    "tuned_record",
    "validation_maps",
]

#: Metrics of each grid row, from :class:`nuclei.metrics.dsb.DSBInstanceMetric`.
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


@torch.inference_mode()
def validation_maps(
    task: nn.Module, datamodule: Any, progress: bool = True
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A trained task's probability maps (C, H, W) and true labels (H, W) on the data
    module's validation split, each at the image's own size (:mod:`nuclei.data.batches`:
    padding cut off in crop mode, probabilities scaled back in resize mode)."""
    datamodule.setup("validate")
    maps: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    loader = datamodule.val_dataloader()
    with progress_bar(progress) as bar:
        job = bar.add_task("Predicting validation images", total=len(loader.dataset))
        for batch in loader:
            probs = torch.sigmoid(task(batch["image"])).float()
            maps += [m.numpy() for m in native_maps(batch, probs)]
            labels += native_labels(batch)
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
    with progress_bar(progress) as bar:
        job = bar.add_task("Scoring postprocessing settings", total=len(combos))
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


def tuned_record(
    checkpoint: Path,
    target: str,
    base: PostprocessConfig,
    rows: Sequence[Mapping[str, Any]],
    n_images: int,
    seconds: float,
) -> dict[str, Any]:
    """The tuning result: the best settings (all of them), its scores and the whole grid."""
    best = rows[0]
    return {
        "settings": asdict(replace(base, **best["settings"])),
        "checkpoint": str(checkpoint.resolve()),
        "target": target,
        "split": "val",
        "n_images": n_images,
        "best": {k: best[k] for k in METRIC_NAMES},
        "grid": [dict(row) for row in rows],
        "tuned_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "wall_time_s": round(seconds, 1),
    }


def split_of(base: PostprocessConfig, target: str) -> str:
    """The split method ``base`` resolves to for a model trained on ``target``."""
    return resolve_split(base.split, target)
