"""Decode samples once into memory, and serve them as augmented tensors."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import albumentations as A
import cv2
import numpy as np
import torch
from rich.progress import Progress
from torch.utils.data import Dataset

from nuclei.data.sources.io import ImageReadError, read_image, read_instance_masks, read_label_mask
from nuclei.data.sources.layouts import SampleFiles
from nuclei.data.sources.rle import RLEError
from nuclei.data.sources.solution import SolutionError, solution_labels
from nuclei.data.targets import make_target

Batch = dict[str, torch.Tensor | list[str]]
# What a bad file raises while it is decoded; anything else is a bug and propagates.
DECODE_ERRORS = (ImageReadError, SolutionError, RLEError)


def read_sample(
    files: SampleFiles, notes: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Read one sample as (uint8 RGB image, int32 instance labels), both at native size.

    A sample without masks is all background. Warnings (empty or overlapping masks, guessed
    instances) are appended to ``notes`` when given.
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
        labels = read_label_mask(files.merged_mask, notes)
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
    """Resize to size x size: area interpolation for the image, nearest for the labels."""
    resize = A.Resize(
        size, size, interpolation=cv2.INTER_AREA, mask_interpolation=cv2.INTER_NEAREST
    )
    out = resize(image=image, mask=labels)
    return out["image"], out["mask"]


@dataclass
class DecodedSamples:
    """Samples decoded into memory, in the order asked for, minus those that failed."""

    ids: list[str] = field(default_factory=list)
    images: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def select(self, ids: Sequence[str]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Images and labels of ``ids`` (each must have been decoded), in that order."""
        index = {sample_id: k for k, sample_id in enumerate(self.ids)}
        return [self.images[index[i]] for i in ids], [self.labels[index[i]] for i in ids]


def decode_samples(
    samples: Sequence[SampleFiles],
    image_size: int | None = None,
    workers: int | None = None,
    description: str = "Decoding images",
    progress: bool = True,
) -> DecodedSamples:
    """Decode every sample once, resized to ``image_size`` (or native when None).

    Every sample is tried: files that cannot be read go to ``failed`` (id -> message naming
    the file) instead of stopping at the first.
    """
    images: list[np.ndarray | None] = [None] * len(samples)
    labels: list[np.ndarray | None] = [None] * len(samples)
    failed: dict[str, str] = {}
    notes: list[str] = []

    def load(index: int) -> None:
        files = samples[index]
        try:
            image, label = read_sample(files, notes)
        except DECODE_ERRORS as exc:
            failed[files.sample_id] = str(exc)
            return
        if image_size is not None:
            image, label = resize_sample(image, label, image_size)
        images[index], labels[index] = image, label

    # Pillow and OpenCV release the GIL while decoding and resizing, so threads scale.
    with (
        ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool,
        Progress(disable=not progress, transient=True) as bar,
    ):
        task = bar.add_task(description, total=len(samples))
        for _ in pool.map(load, range(len(samples))):
            bar.advance(task)
    decoded = DecodedSamples(failed=failed, notes=sorted(notes))
    for files, image, label in zip(samples, images, labels, strict=True):
        if image is not None:
            decoded.ids.append(files.sample_id)
            decoded.images.append(image)
            decoded.labels.append(label)
    return decoded


class NucleiDataset(Dataset):
    """In-memory samples as dicts: ``image`` (3,H,W) float in [0,1], ``mask`` (1,H,W) {0,1},
    ``labels`` (H,W) int32 instance ids and ``id``.

    ``images``/``labels`` are stacked arrays (all one size) or lists of arrays of any size.
    With a ``target`` other than ``"binary"`` a sample also has ``target`` (C,H,W) float,
    derived from its labels after augmentation (:func:`nuclei.data.targets.make_target`), so
    every channel follows the flips, rotations and crops of the image.
    """

    def __init__(
        self,
        images: np.ndarray | Sequence[np.ndarray],
        labels: np.ndarray | Sequence[np.ndarray],
        sample_ids: Sequence[str],
        transform: A.Compose | None = None,
        target: str = "binary",
        border_width: int = 1,
    ) -> None:
        if not len(images) == len(labels) == len(sample_ids):
            raise ValueError("images, labels and sample_ids must have the same length")
        self.images = images
        self.labels = labels
        self.sample_ids = list(sample_ids)
        self.transform = transform
        self.target = target
        self.border_width = border_width

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        image, labels = self.images[index], self.labels[index]
        if self.transform is not None:
            out = self.transform(image=image, mask=labels)
            image, labels = out["image"], out["mask"]
        image_t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0
        labels_t = torch.from_numpy(np.ascontiguousarray(labels))
        sample = {
            "image": image_t,
            "mask": (labels_t > 0).unsqueeze(0).float(),
            "labels": labels_t,
            "id": self.sample_ids[index],
        }
        if self.target != "binary":
            sample["target"] = torch.from_numpy(
                make_target(np.asarray(labels), self.target, self.border_width)
            )
        return sample


def pad_collate(samples: list[dict[str, torch.Tensor | str]], multiple: int = 32) -> Batch:
    """Batch whole images of different sizes: pad each, bottom and right, to a common size.

    The common size is the largest height and width in the batch, rounded up to a multiple
    of ``multiple`` (the network's stride). Images are mirrored into the padding (natural
    context for the network), masks and labels padded with 0. Two keys are added:
    ``valid`` (N,1,H,W) bool, True on real pixels, and ``size`` (N,2) int64, each sample's
    own (height, width): ``x[i, ..., :h, :w]`` recovers sample ``i``. A ``target`` (C,H,W),
    when the samples have one, is padded with 0 like the mask.
    """
    sizes = [tuple(s["image"].shape[-2:]) for s in samples]
    height = math.ceil(max(h for h, _ in sizes) / multiple) * multiple
    width = math.ceil(max(w for _, w in sizes) / multiple) * multiple
    n = len(samples)
    images = torch.empty((n, 3, height, width), dtype=torch.float32)
    masks = torch.zeros((n, 1, height, width), dtype=torch.float32)
    labels = torch.zeros((n, height, width), dtype=samples[0]["labels"].dtype)
    valid = torch.zeros((n, 1, height, width), dtype=torch.bool)
    for k, (sample, (h, w)) in enumerate(zip(samples, sizes, strict=True)):
        padding = ((0, 0), (0, height - h), (0, width - w))
        images[k] = torch.from_numpy(np.pad(sample["image"].numpy(), padding, mode="symmetric"))
        masks[k, :, :h, :w] = sample["mask"]
        labels[k, :h, :w] = sample["labels"]
        valid[k, :, :h, :w] = True
    batch: Batch = {
        "image": images,
        "mask": masks,
        "labels": labels,
        "id": [s["id"] for s in samples],
        "valid": valid,
        "size": torch.tensor(sizes, dtype=torch.int64),
    }
    if "target" in samples[0]:
        channels = samples[0]["target"].shape[0]
        targets = torch.zeros((n, channels, height, width), dtype=torch.float32)
        for k, (sample, (h, w)) in enumerate(zip(samples, sizes, strict=True)):
            targets[k, :, :h, :w] = sample["target"]
        batch["target"] = targets
    return batch
