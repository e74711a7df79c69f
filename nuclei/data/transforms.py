"""The training augmentation pipeline, and the DataLoader worker seeding it needs."""

from __future__ import annotations

import albumentations as A
import cv2
import torch
from lightning.fabric.utilities.seed import pl_worker_init_function
from torch.utils.data import get_worker_info

from nuclei.data.config import AugmentationConfig, SizeConfig


def train_transform(size: SizeConfig, augmentation: AugmentationConfig, rank: int = 0) -> A.Compose:
    """Training augmentation: random crop (crop mode), then the enabled flips, rotations
    and intensity changes, applied to image and mask together.

    Seeded with ``augmentation.seed + rank``: under DDP each process draws its own
    augmentations (with DataLoader workers they reseed anyway, from a seed that includes
    the rank, see :func:`seed_augmentation_worker`).
    """
    transforms: list[A.BasicTransform] = []
    if size.mode == "crop":
        side = size.crop_size
        transforms += [
            # Images smaller than a crop are mirrored out to it, labels with them.
            A.PadIfNeeded(
                min_height=side,
                min_width=side,
                border_mode=cv2.BORDER_REFLECT_101,
                fill=0,
                fill_mask=0,
            ),
            A.RandomCrop(height=side, width=side),
        ]
    if augmentation.hflip:
        transforms.append(A.HorizontalFlip(p=0.5))
    if augmentation.vflip:
        transforms.append(A.VerticalFlip(p=0.5))
    if augmentation.rot90:
        transforms.append(A.RandomRotate90(p=1.0))  # 0, 90, 180 or 270 degrees
    if augmentation.brightness_contrast:
        transforms.append(
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5)
        )
    if augmentation.invert:
        transforms.append(A.InvertImg(p=0.5))
    return A.Compose(transforms, seed=augmentation.seed + rank)


def seed_augmentation_worker(worker_id: int) -> None:
    """DataLoader worker init: seed numpy/random like Lightning, and reseed albumentations.

    albumentations 2.x keeps its own RNG, which global seeds do not reach, so without this
    every worker would repeat the same augmentation sequence.
    """
    pl_worker_init_function(worker_id)
    info = get_worker_info()
    transform = getattr(info.dataset, "transform", None) if info is not None else None
    if transform is not None:
        transform.set_random_seed(torch.initial_seed() % 2**32)
