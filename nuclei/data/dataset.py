"""Decode samples once into memory, and serve them as augmented tensors."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import albumentations as A
import cv2
import numpy as np
import torch
from rich.progress import Progress
from torch.utils.data import Dataset

from nuclei.data.io import ImageReadError, read_image, read_instance_masks, read_mask
from nuclei.data.layouts import SampleFiles


def read_sample(files: SampleFiles) -> tuple[np.ndarray, np.ndarray]:
    """Read one sample as (uint8 RGB image, int32 instance labels), both at native size."""
    image = read_image(files.image)
    shape = image.shape[:2]
    if files.merged_mask is not None:
        mask = read_mask(files.merged_mask)
        if mask.shape != shape:
            raise ImageReadError(
                f"{files.merged_mask}: mask is {mask.shape[0]}x{mask.shape[1]} but its image "
                f"{files.image} is {shape[0]}x{shape[1]}"
            )
        labels = (mask > 0).astype(np.int32)
    else:
        labels = read_instance_masks(files.instance_masks, shape)
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


def load_samples(
    samples: Sequence[SampleFiles],
    image_size: int,
    workers: int | None = None,
    description: str = "Decoding images",
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode and resize every sample once: (N, S, S, 3) uint8 images, (N, S, S) int32 labels."""
    images = np.zeros((len(samples), image_size, image_size, 3), dtype=np.uint8)
    labels = np.zeros((len(samples), image_size, image_size), dtype=np.int32)

    def load(index: int) -> int:
        image, label = read_sample(samples[index])
        images[index], labels[index] = resize_sample(image, label, image_size)
        return index

    # Pillow and OpenCV release the GIL while decoding and resizing, so threads scale.
    with (
        ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool,
        Progress(disable=not progress, transient=True) as bar,
    ):
        task = bar.add_task(description, total=len(samples))
        for _ in pool.map(load, range(len(samples))):
            bar.advance(task)
    return images, labels


class NucleiDataset(Dataset):
    """In-memory samples as dicts: ``image`` (3,H,W) float in [0,1], ``mask`` (1,H,W) {0,1},
    ``labels`` (H,W) int32 instance ids and ``id``."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        sample_ids: Sequence[str],
        transform: A.Compose | None = None,
    ) -> None:
        if not len(images) == len(labels) == len(sample_ids):
            raise ValueError("images, labels and sample_ids must have the same length")
        self.images = images
        self.labels = labels
        self.sample_ids = list(sample_ids)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        image, labels = self.images[index], self.labels[index]
        if self.transform is not None:
            out = self.transform(image=image, mask=labels)
            image, labels = out["image"], out["mask"]
        image_t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0
        labels_t = torch.from_numpy(np.ascontiguousarray(labels))
        return {
            "image": image_t,
            "mask": (labels_t > 0).unsqueeze(0).float(),
            "labels": labels_t,
            "id": self.sample_ids[index],
        }
