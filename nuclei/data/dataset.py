"""In-memory samples served as (augmented) tensors, and the batching of whole images."""

from __future__ import annotations

import math
from collections.abc import Sequence

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from nuclei.data.batches import NATIVE_LABELS
from nuclei.data.config import IntensityConfig
from nuclei.data.intensity import normalize_image
from nuclei.data.targets import make_target

Batch = dict[str, torch.Tensor | list[str]]


class NucleiDataset(Dataset):
    """In-memory samples as dicts: ``image`` (3,H,W) float in [0,1], ``mask`` (1,H,W) {0,1},
    ``labels`` (H,W) int32 instance ids and ``id``.

    ``images``/``labels`` are stacked arrays (all one size) or lists of arrays of any size.
    Each image is normalised as ``intensity`` says (:func:`nuclei.data.intensity.normalize_image`,
    the whole image, before any crop) and then augmented by ``transform``.
    With a ``target`` other than ``"binary"`` a sample also has ``target`` (C,H,W) float,
    derived from its labels after augmentation (:func:`nuclei.data.targets.make_target`), so
    every channel follows the flips, rotations and crops of the image. ``native_labels``
    (evaluation in resize mode) are each image's labels at its own size, served as the
    sample's ``native_labels`` so that it is scored on its own pixels.
    """

    def __init__(
        self,
        images: np.ndarray | Sequence[np.ndarray],
        labels: np.ndarray | Sequence[np.ndarray],
        sample_ids: Sequence[str],
        transform: A.Compose | None = None,
        target: str = "binary",
        border_width: int = 1,
        intensity: IntensityConfig | None = None,
        native_labels: Sequence[np.ndarray] | None = None,
    ) -> None:
        if not len(images) == len(labels) == len(sample_ids):
            raise ValueError("images, labels and sample_ids must have the same length")
        if native_labels is not None and len(native_labels) != len(images):
            raise ValueError("native_labels must have one entry per image")
        self.images = images
        self.labels = labels
        self.intensity = intensity or IntensityConfig()
        self.native_labels = native_labels
        self.sample_ids = list(sample_ids)
        self.transform = transform
        self.target = target
        self.border_width = border_width

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        image = normalize_image(self.images[index], self.intensity)
        labels = self.labels[index]
        if self.transform is not None:
            out = self.transform(image=image, mask=labels)
            image, labels = out["image"], out["mask"]
        image_t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)
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
        if self.native_labels is not None:
            sample[NATIVE_LABELS] = self.native_labels[index]
        return sample


def native_collate(samples: list[dict[str, torch.Tensor | str]]) -> Batch:
    """Batch resized samples that carry ``native_labels``: those stay a list (one size each),
    the rest is stacked as usual."""
    native = [s[NATIVE_LABELS] for s in samples]
    batch = default_collate([{k: v for k, v in s.items() if k != NATIVE_LABELS} for s in samples])
    batch[NATIVE_LABELS] = native
    return batch


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
