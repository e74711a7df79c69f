"""Scores of probability maps already computed: pixel metrics of the foreground and the DSB
metric of the instances the postprocessing makes of them, over any set of images.

``nuclei-eval out_of_fold=true`` pools the images of every fold here (each predicted by its
own fold model), and keeps per-fold scores beside.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from nuclei.instances.postprocess import PostprocessConfig, instances_from_maps
from nuclei.metrics.dsb import DSBInstanceMetric
from nuclei.metrics.pixel import foreground_metrics


def postprocess_maps(
    maps: Sequence[np.ndarray], postprocess: PostprocessConfig, target: str
) -> list[np.ndarray]:
    """Instance labels (H, W) of each probability map (C, H, W)."""
    return [instances_from_maps(m, postprocess, target) for m in maps]


class MapScores:
    """Pixel accuracy, IoU and Dice of the foreground probability (channel 0) against the
    true masks, pooled over pixels, as the task logs them, and the DSB metric (``map``,
    ``ap50``...) of predicted instances, with one row per image."""

    def __init__(self, pixel_threshold: float = 0.5) -> None:
        self.pixel = foreground_metrics(pixel_threshold)
        self.instances = DSBInstanceMetric()
        self.instances.record_images = True
        self.rows: list[dict[str, Any]] = []

    def update(
        self,
        maps: Sequence[np.ndarray],
        labels: Sequence[np.ndarray],
        predicted: Sequence[np.ndarray],
        ids: Sequence[str],
    ) -> None:
        """Add images: their maps, true labels, predicted labels and ids."""
        for probs, truth in zip(maps, labels, strict=True):
            foreground = torch.from_numpy(np.ascontiguousarray(probs[0])).flatten()
            self.pixel.update(foreground, torch.from_numpy(np.asarray(truth) > 0).flatten().int())
        self.instances.update(list(predicted), [np.asarray(t) for t in labels], ids=list(ids))
        self.rows += self.instances.image_rows
        self.instances.image_rows = []

    def merge(self, other: MapScores) -> None:
        """Add the images ``other`` has seen (its metric states and rows), without scoring
        them again."""
        for name, metric in self.pixel.items():
            metric.merge_state(other.pixel[name])
        self.instances.merge_state(other.instances)
        self.rows += other.rows

    def compute(self) -> dict[str, float]:
        """``acc``, ``iou``, ``dice``, ``map``, ``ap50``, ``ap75``, ``f1``, ``count_error``,
        ``n_split``, ``n_merged`` and ``n_images`` of the images added so far."""
        scores = {name: float(value) for name, value in self.pixel.compute().items()}
        scores.update({name: float(v) for name, v in self.instances.compute().items()})
        return {**scores, "n_images": len(self.rows)}
