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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nuclei.data.batches import native_labels, native_maps
from nuclei.instances.postprocess import PostprocessConfig, instances_from_maps, resolve_split
from nuclei.metrics.dsb import DSBInstanceMetric
from nuclei.runtime import progress_bar

__all__ = [
    "METRIC_NAMES",
    "PredictedSplit",
    "default_grid",
    "grid_search",
    "predict_split",
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


@dataclass
class PredictedSplit:
    """A split's images as a trained network saw them: ids, probability maps (C, H, W) and
    true labels (H, W), each at the image's own size."""

    ids: list[str] = field(default_factory=list)
    maps: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


@torch.inference_mode()
def predict_split(task: nn.Module, datamodule: Any, progress: bool = True) -> PredictedSplit:
    """A trained task's probability maps and the true labels of the data module's validation
    split, each at the image's own size (:mod:`nuclei.data.batches`: padding cut off in crop
    mode, probabilities scaled back in resize mode)."""
    datamodule.setup("validate")
    predicted = PredictedSplit()
    loader = datamodule.val_dataloader()
    with progress_bar(progress) as bar:
        job = bar.add_task("Predicting validation images", total=len(loader.dataset))
        for batch in loader:
            probs = torch.sigmoid(task(batch["image"])).float()
            predicted.ids += list(batch["id"])
            predicted.maps += [m.numpy() for m in native_maps(batch, probs)]
            predicted.labels += native_labels(batch)
            bar.advance(job, len(probs))
    return predicted


def validation_maps(
    task: nn.Module, datamodule: Any, progress: bool = True
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The maps and labels of :func:`predict_split`."""
    predicted = predict_split(task, datamodule, progress)
    return predicted.maps, predicted.labels


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


#: What a tuning was scored on: the run's own validation split (figures on that split are
#: then optimistic), or the out-of-fold predictions of a cross-validation (each image
#: predicted by the fold model that did not train on it).
TUNED_ON = ("val", "out-of-fold")


def tuned_record(
    checkpoint: Path | Sequence[Path],
    target: str,
    base: PostprocessConfig,
    rows: Sequence[Mapping[str, Any]],
    n_images: int,
    seconds: float,
    tuned_on: str = "val",
) -> dict[str, Any]:
    """The tuning result: the best settings (all of them), its scores, the whole grid, and
    what it was tuned on (:data:`TUNED_ON`; out of fold: every fold's checkpoint)."""
    if tuned_on not in TUNED_ON:
        raise ValueError(f"tuned_on must be one of {TUNED_ON}, got {tuned_on!r}")
    best = rows[0]
    paths = [checkpoint] if isinstance(checkpoint, Path) else list(checkpoint)
    return {
        "settings": asdict(replace(base, **best["settings"])),
        "checkpoint": str(paths[0].resolve()),
        **({"checkpoints": [str(p.resolve()) for p in paths]} if len(paths) > 1 else {}),
        "target": target,
        "split": "val",
        "tuned_on": tuned_on,
        "n_images": n_images,
        "best": {k: best[k] for k in METRIC_NAMES},
        "grid": [dict(row) for row in rows],
        "tuned_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "wall_time_s": round(seconds, 1),
    }


def split_of(base: PostprocessConfig, target: str) -> str:
    """The split method ``base`` resolves to for a model trained on ``target``."""
    return resolve_split(base.split, target)
