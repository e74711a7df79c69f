"""The training augmentation pipeline, and the DataLoader worker seeding it needs."""

from __future__ import annotations

import albumentations as A
import cv2
import torch
from lightning.fabric.utilities.seed import pl_worker_init_function
from torch.utils.data import get_worker_info

from nuclei.data.config import AugmentationConfig, SizeConfig


def train_transform(size: SizeConfig, augmentation: AugmentationConfig, rank: int = 0) -> A.Compose:
    """Training augmentation of a float32 (H, W, 3) image in [0, 1] and its int32 labels
    (``mask=``): scale jitter, random crop (crop mode), then the enabled flips, rotations and
    intensity changes. Labels are only ever moved (nearest neighbour), never interpolated.

    Seeded with ``augmentation.seed + rank``: under DDP each process draws its own
    augmentations (with DataLoader workers they reseed anyway, from a seed that includes
    the rank, see :func:`seed_augmentation_worker`).
    """
    transforms: list[A.BasicTransform] = []
    if augmentation.scale > 0:
        transforms.append(scale_jitter(augmentation.scale, keep_size=size.mode == "resize"))
    if size.mode == "crop":
        transforms += _random_crop(size.crop_size)
    if augmentation.hflip:
        transforms.append(A.HorizontalFlip(p=0.5))
    if augmentation.vflip:
        transforms.append(A.VerticalFlip(p=0.5))
    if augmentation.rot90:
        transforms.append(A.RandomRotate90(p=1.0))  # 0, 90, 180 or 270 degrees
    transforms += _intensity_transforms(augmentation)
    return A.Compose(transforms, seed=augmentation.seed + rank)


def scale_jitter(scale: float, keep_size: bool) -> A.Affine:
    """Zoom by a factor in ``[1/(1+scale), 1+scale]`` (half the draws in, half out), p=0.5.

    ``keep_size=False`` (crop mode, before the crop) resizes the whole image, so the crop
    that follows keeps the network's size and sees real pixels wherever the image is large
    enough. ``keep_size=True`` (resize mode, the image already at ``image_size``) zooms about
    the centre within the same size; zooming out mirrors the image (and labels) into the
    margin, as the crop mode's padding does.
    """
    return A.Affine(
        scale=(1.0 / (1.0 + scale), 1.0 + scale),
        keep_ratio=True,
        balanced_scale=True,
        fit_output=not keep_size,
        interpolation=cv2.INTER_LINEAR,
        mask_interpolation=cv2.INTER_NEAREST,
        border_mode=cv2.BORDER_REFLECT_101,
        p=0.5,
    )


def _random_crop(side: int) -> list[A.BasicTransform]:
    """A random ``side`` x ``side`` crop; smaller images are mirrored out to it first."""
    return [
        A.PadIfNeeded(
            min_height=side,
            min_width=side,
            border_mode=cv2.BORDER_REFLECT_101,
            fill=0,
            fill_mask=0,
        ),
        A.RandomCrop(height=side, width=side),
    ]


def _intensity_transforms(augmentation: AugmentationConfig) -> list[A.BasicTransform]:
    """The enabled image-only changes, each p=0.5; they leave the labels untouched and keep
    a float image in [0, 1] (albumentations clips float results to that range)."""
    transforms: list[A.BasicTransform] = []
    if augmentation.brightness_contrast:
        transforms.append(
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5)
        )
    if augmentation.gamma > 0:
        # gamma_limit is in percent: 100 is gamma 1
        limit = (100.0 / (1.0 + augmentation.gamma), 100.0 * (1.0 + augmentation.gamma))
        transforms.append(A.RandomGamma(gamma_limit=limit, p=0.5))
    if augmentation.blur > 0:
        # blur_limit=0: the kernel size follows sigma (int(3.5 * sigma) * 2 + 1)
        transforms.append(A.GaussianBlur(sigma_limit=(0.0, augmentation.blur), blur_limit=0, p=0.5))
    if augmentation.noise > 0:
        # one noise field for all channels: a grey image stays grey
        noise = A.GaussNoise(std_range=(0.0, augmentation.noise), per_channel=False, p=0.5)
        transforms.append(noise)
    if augmentation.invert:
        transforms.append(A.InvertImg(p=0.5))  # 1 - x on a float image
    return transforms


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
