"""Decode samples once into memory, each at its own size: read and check every file."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from nuclei.data.sources.io import ImageReadError, read_image, read_instance_masks, read_label_mask
from nuclei.data.sources.layouts import SampleFiles
from nuclei.data.sources.rle import RLEError
from nuclei.data.sources.solution import SolutionError, solution_labels
from nuclei.runtime import available_cores, progress_bar

# What a bad file raises while it is decoded; anything else is a bug and propagates.
DECODE_ERRORS = (ImageReadError, SolutionError, RLEError)


def read_sample(
    files: SampleFiles, notes: list[str] | None = None, guessed: list[Path] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Read one sample as (uint8 RGB image, int32 instance labels), both at native size.

    A sample without masks is all background. Warnings (empty or overlapping masks) are
    appended to ``notes`` when given; a binary merged mask whose several nuclei are only
    connected components, to ``guessed`` (:func:`read_label_mask`).
    """
    image = read_image(files.image)
    shape = image.shape[:2]
    if files.solution is not None:
        rows = files.solution
        if rows.shape is not None and rows.shape != shape:
            raise SolutionError(
                f"{files.image} is {shape[0]}x{shape[1]} but {rows.path} gives image "
                f"{rows.image_id} as {rows.shape[0]}x{rows.shape[1]} (line {rows.rows[0].line})"
                if rows.rows
                else f"{files.image} is {shape[0]}x{shape[1]} but {rows.path} gives "
                f"{rows.shape[0]}x{rows.shape[1]}"
            )
        labels = solution_labels(rows, shape)
    elif files.merged_mask is not None:
        labels = read_label_mask(files.merged_mask, notes, guessed)
        if labels.shape != shape:
            raise ImageReadError(
                f"{files.merged_mask}: mask is {labels.shape[0]}x{labels.shape[1]} but its image "
                f"{files.image} is {shape[0]}x{shape[1]}"
            )
    else:
        labels = read_instance_masks(files.instance_masks, shape, notes)
    return image, labels


def resize_sample(
    image: np.ndarray, labels: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Resize to size x size: area interpolation for the image (:func:`resize_image`),
    nearest for the labels."""
    nearest = cv2.resize(labels, (size, size), interpolation=cv2.INTER_NEAREST)
    return resize_image(image, size), nearest


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """An (H, W, C) image resized to ``size x size`` by OpenCV area interpolation: how resize
    mode shrinks every image, in training and in ``nuclei-predict`` alike."""
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


@dataclass
class DecodedSamples:
    """Samples decoded into memory, in the order asked for, minus those that failed."""

    ids: list[str] = field(default_factory=list)
    images: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Binary merged masks whose several nuclei were guessed as connected components.
    guessed: list[Path] = field(default_factory=list)

    def select(self, ids: Sequence[str]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Images and labels of ``ids`` (each must have been decoded), in that order."""
        index = {sample_id: k for k, sample_id in enumerate(self.ids)}
        return [self.images[index[i]] for i in ids], [self.labels[index[i]] for i in ids]


def decode_samples(
    samples: Sequence[SampleFiles],
    workers: int | None = None,
    description: str = "Decoding images",
    progress: bool = True,
) -> DecodedSamples:
    """Decode every sample once, at its own size (resize mode resizes afterwards).

    Every sample is tried: files that cannot be read go to ``failed`` (id -> message naming
    the file) instead of stopping at the first.
    """
    images: list[np.ndarray | None] = [None] * len(samples)
    labels: list[np.ndarray | None] = [None] * len(samples)
    failed: dict[str, str] = {}
    notes: list[str] = []
    guessed: list[Path] = []

    def load(index: int) -> None:
        files = samples[index]
        try:
            image, label = read_sample(files, notes, guessed)
        except DECODE_ERRORS as exc:
            failed[files.sample_id] = str(exc)
            return
        images[index], labels[index] = image, label

    # Pillow and OpenCV release the GIL while decoding and resizing, so threads scale.
    with (
        ThreadPoolExecutor(max_workers=workers or available_cores()) as pool,
        progress_bar(enabled=progress, transient=True) as bar,
    ):
        task = bar.add_task(description, total=len(samples))
        for _ in pool.map(load, range(len(samples))):
            bar.advance(task)
    decoded = DecodedSamples(failed=failed, notes=sorted(notes), guessed=sorted(guessed))
    for files, image, label in zip(samples, images, labels, strict=True):
        if image is not None:
            decoded.ids.append(files.sample_id)
            decoded.images.append(image)
            decoded.labels.append(label)
    return decoded
