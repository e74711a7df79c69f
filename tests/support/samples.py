"""Tiny data sets in each published DSB2018 layout, written into a test's tmp_path."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from nuclei.data.sources.rle import rle_encode


def square_masks(shape: tuple[int, int], boxes: Sequence[tuple[int, int, int]]) -> list[np.ndarray]:
    """Binary masks of squares given as (row, col, side)."""
    masks = []
    for row, col, side in boxes:
        mask = np.zeros(shape, dtype=bool)
        mask[row : row + side, col : col + side] = True
        masks.append(mask)
    return masks


def square_labels(shape: tuple[int, int], seed: int, n: int = 3, side: int = 4) -> np.ndarray:
    """An int32 label image of ``n`` non-overlapping squares placed from ``seed``."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.int32)
    placed = 0
    while placed < n:
        row, col = rng.integers(0, shape[0] - side), rng.integers(0, shape[1] - side)
        window = labels[row : row + side + 1, col : col + side + 1]
        if window.any():
            continue
        placed += 1
        labels[row : row + side, col : col + side] = placed
    return labels


def labelled_set(prefix: str, n: int, shape: tuple[int, int] = (24, 24)) -> dict[str, np.ndarray]:
    """``n`` label images keyed ``<prefix>0``, ``<prefix>1``, ..."""
    return {f"{prefix}{i}": square_labels(shape, seed=i) for i in range(n)}


def image_for(labels: np.ndarray) -> np.ndarray:
    """A grayscale picture of the nuclei: bright squares on a dark background."""
    return np.where(labels > 0, 200, 20).astype(np.uint8)


def write_kaggle_sample(
    root: Path, sample_id: str, image: np.ndarray, masks: Sequence[np.ndarray] | None
) -> Path:
    """Write one sample in the Kaggle layout: ``<id>/images/<id>.png`` and one mask per
    nucleus, ``<id>/masks/n1.png``, ``n2.png``... (0/255); no ``masks/`` folder for None."""
    folder = root / sample_id
    (folder / "images").mkdir(parents=True)
    Image.fromarray(image).save(folder / "images" / f"{sample_id}.png")
    if masks is not None:
        (folder / "masks").mkdir()
        for k, mask in enumerate(masks, start=1):
            Image.fromarray((mask > 0).astype(np.uint8) * 255).save(folder / "masks" / f"n{k}.png")
    return folder


def write_kaggle(
    split_dir: Path, labels_by_id: dict[str, np.ndarray], with_masks: bool = True
) -> Path:
    """``split_dir/<id>/images/<id>.png`` (RGBA, like DSB2018) and one mask PNG per nucleus."""
    for sample_id, labels in labels_by_id.items():
        gray = image_for(labels)
        rgba = np.stack([gray, gray, gray, np.full_like(gray, 255)], axis=-1)
        masks = [labels == k for k in range(1, int(labels.max()) + 1)] if with_masks else None
        write_kaggle_sample(split_dir, sample_id, rgba, masks)
    return split_dir


def write_flat(
    split_dir: Path, labels_by_id: dict[str, np.ndarray], label_masks: bool = False
) -> Path:
    """``split_dir/inputs/<id>.png`` and one merged mask ``split_dir/masks/<id>.png``:
    0/255 by default, or a 16-bit label image with ``label_masks``."""
    (split_dir / "inputs").mkdir(parents=True)
    (split_dir / "masks").mkdir()
    for sample_id, labels in labels_by_id.items():
        Image.fromarray(image_for(labels)).save(split_dir / "inputs" / f"{sample_id}.png")
        mask = labels.astype(np.uint16) if label_masks else ((labels > 0) * 255).astype(np.uint8)
        Image.fromarray(mask).save(split_dir / "masks" / f"{sample_id}.png")
    return split_dir


def write_solution(path: Path, labels_by_id: dict[str, np.ndarray]) -> Path:
    """``stage1_solution.csv`` written with the project's encoder, one row per nucleus."""
    lines = ["ImageId,EncodedPixels,Height,Width,Usage"]
    for sample_id, labels in labels_by_id.items():
        height, width = labels.shape
        for k in range(1, int(labels.max()) + 1):
            lines.append(f"{sample_id},{rle_encode(labels == k)},{height},{width},Public")
    path.write_text("\n".join(lines) + "\n")
    return path
