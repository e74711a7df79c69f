"""Scores of finished label images: what a user can compute from ``nuclei-predict``'s files."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from nuclei.metrics.dsb import DSBInstanceMetric


def label_image_scores(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Pooled foreground ``iou`` and the mean DSB2018 ``map`` and ``ap50`` over images, from
    (true labels, predicted labels) pairs of (H, W) integer images (0: background)."""
    metric = DSBInstanceMetric()
    intersection = union = images = 0
    for truth, predicted in pairs:
        if truth.shape != predicted.shape:
            raise ValueError(f"labels are {truth.shape} but the prediction is {predicted.shape}")
        intersection += int(((truth > 0) & (predicted > 0)).sum())
        union += int(((truth > 0) | (predicted > 0)).sum())
        metric.update([predicted.astype(np.int64)], [truth.astype(np.int64)])
        images += 1
    if images == 0:
        raise ValueError("no images to score")
    scores = metric.compute()
    return {
        "iou": intersection / union if union else 1.0,
        "map": float(scores["map"]),
        "ap50": float(scores["ap50"]),
        "images": images,
    }
