"""Pixel metrics of the foreground: accuracy, IoU and Dice, as one torchmetrics collection."""

from __future__ import annotations

from torchmetrics import MetricCollection
from torchmetrics.classification import BinaryAccuracy, BinaryF1Score, BinaryJaccardIndex


def foreground_metrics(threshold: float) -> MetricCollection:
    """Pixel accuracy, foreground IoU and Dice of binary masks, as one collection.

    Inputs are always probabilities and {0, 1} targets made by the task, so torchmetrics'
    per-update input checks (a sort of every target pixel) are skipped: they cost about half
    of the update, which runs on every training step.
    """
    checks = {"threshold": threshold, "validate_args": False}
    return MetricCollection(
        {
            "acc": BinaryAccuracy(**checks),
            "iou": BinaryJaccardIndex(**checks),
            "dice": BinaryF1Score(**checks),
        }
    )
