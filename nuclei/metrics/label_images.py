"""Scores of finished label images: what a user can compute from ``nuclei-predict``'s files."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from nuclei.metrics.dsb import DSBInstanceMetric


def score_label_images(
    items: Iterable[tuple[str | None, np.ndarray, np.ndarray]],
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Pooled foreground ``iou``, the mean DSB2018 ``map`` and ``ap50`` over images and the
    number of ``images``; and one row per image (:mod:`nuclei.metrics.image_rows`), from
    (id, true labels, predicted labels) items of (H, W) integer images (0: background)."""
    metric = DSBInstanceMetric()
    metric.record_images = True
    intersection = union = images = 0
    for sample_id, truth, predicted in items:
        if truth.shape != predicted.shape:
            raise ValueError(
                f"{sample_id or 'an image'}: labels are {truth.shape} "
                f"but the prediction is {predicted.shape}"
            )
        intersection += int(((truth > 0) & (predicted > 0)).sum())
        union += int(((truth > 0) | (predicted > 0)).sum())
        metric.update([predicted.astype(np.int64)], [truth.astype(np.int64)], ids=[sample_id])
        images += 1
    if images == 0:
        raise ValueError("no images to score")
    scores = metric.compute()
    pooled = {
        "iou": intersection / union if union else 1.0,
        "map": float(scores["map"]),
        "ap50": float(scores["ap50"]),
        "images": images,
    }
    return pooled, metric.take_image_rows()


def label_image_scores(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """The pooled scores of :func:`score_label_images` from (true, predicted) label pairs."""
    return score_label_images((None, truth, predicted) for truth, predicted in pairs)[0]
