"""Back from a batch to its images, each at its own size.

Evaluation batches come in two forms. In crop mode, whole images are padded to the
network's stride (:func:`nuclei.data.dataset.pad_collate`): each image's maps are cut back
to its ``size``. In resize mode, every image was resized for the network and the batch
carries each image's labels at its own size (``native_labels``): the maps are scaled back to
that size by :func:`scale_to_size`, exactly as ``nuclei-predict`` does, so every score is
computed on the image's own pixels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

#: The batch key holding each image's (H, W) int32 labels at its own size (resize mode).
NATIVE_LABELS = "native_labels"


def scale_to_size(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(C, h, w) maps scaled to (C, H, W) ``size`` by bilinear interpolation.

    How a prediction made on a resized image returns to the image's own size, in training,
    evaluation and ``nuclei-predict`` alike; ``align_corners=False`` treats pixels as areas,
    like the area interpolation that shrank the image.
    """
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    scaled = F.interpolate(maps.unsqueeze(0), size=size, mode="bilinear", align_corners=False)
    return scaled[0]


def image_sizes(
    batch: Mapping[str, Any], count: int, shape: tuple[int, int]
) -> list[tuple[int, int]]:
    """Each image's own (height, width): from ``native_labels`` or ``size``, else ``shape``."""
    if NATIVE_LABELS in batch:
        return [tuple(labels.shape[-2:]) for labels in batch[NATIVE_LABELS]]
    if "size" in batch:
        return [(int(h), int(w)) for h, w in batch["size"].tolist()]
    return [tuple(shape)] * count  # type: ignore[list-item]


def native_maps(batch: Mapping[str, Any], maps: torch.Tensor) -> list[torch.Tensor]:
    """Per image of the batch, its (C, H, W) ``maps`` at its own size.

    ``maps`` (N, C, h, w) are the batch's network outputs (probabilities): padded images
    are cut back to their ``size``; resized images (batches with ``native_labels``) are
    scaled back to their labels' size with :func:`scale_to_size`; others are returned whole.
    """
    sizes = image_sizes(batch, maps.shape[0], tuple(maps.shape[-2:]))
    if NATIVE_LABELS in batch:
        return [scale_to_size(m, size) for m, size in zip(maps, sizes, strict=True)]
    return [m[:, :h, :w] for m, (h, w) in zip(maps, sizes, strict=True)]


def native_labels(batch: Mapping[str, Any]) -> list[np.ndarray]:
    """Per image of the batch, its (H, W) true instance labels at its own size."""
    if NATIVE_LABELS in batch:
        return [np.asarray(labels) for labels in batch[NATIVE_LABELS]]
    labels = batch["labels"].cpu().numpy()
    sizes = image_sizes(batch, len(labels), labels.shape[-2:])
    return [lab[:h, :w] for lab, (h, w) in zip(labels, sizes, strict=True)]
