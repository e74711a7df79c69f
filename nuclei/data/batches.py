"""Back from a batch to its images: undo the padding of :func:`nuclei.data.dataset.pad_collate`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def image_sizes(
    batch: Mapping[str, Any], count: int, shape: tuple[int, int]
) -> list[tuple[int, int]]:
    """Each image's own (height, width): the batch's ``size`` entry, else ``shape`` for all."""
    if "size" in batch:
        return [(int(h), int(w)) for h, w in batch["size"].tolist()]
    return [tuple(shape)] * count  # type: ignore[list-item]


def unpad(
    batch: Mapping[str, Any], maps: np.ndarray, labels: np.ndarray
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per image, its (C, h, w) maps and (h, w) labels without the padding.

    ``maps`` (N, C, H, W) and ``labels`` (N, H, W) are arrays of a batch; batches of whole
    images padded to the network's stride carry each image's ``size``, others are returned
    whole.
    """
    sizes = image_sizes(batch, len(labels), labels.shape[-2:])
    cropped_maps = [m[:, :h, :w] for m, (h, w) in zip(maps, sizes, strict=True)]
    cropped_labels = [lab[:h, :w] for lab, (h, w) in zip(labels, sizes, strict=True)]
    return cropped_maps, cropped_labels
