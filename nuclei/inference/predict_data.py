"""The data module of a prediction: image files served to ``trainer.predict``.

Images are decoded, and made into what the network sees (resized and normalised, as the
prediction settings say), in DataLoader worker processes at a lower CPU priority
(:mod:`nuclei.inference.background`), while the network works on the previous batch: the
process that runs the network only batches them. Under DDP the Trainer gives each process
its own share of the files (Lightning's unrepeated sampler for prediction: every image to
exactly one process).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from nuclei.inference.background import lower_priority
from nuclei.inference.image_files import LoadedImage, read_for_segmenting
from nuclei.parent_death import die_with_parent, leave_stopping_to_parent

#: Turns an (H, W, 3) uint8 image into the tensor the network sees, before batching.
Prepare = Callable[[np.ndarray], torch.Tensor]


@dataclass
class ServedImage:
    """One decoded file and its network input (None when unreadable or not prepared)."""

    loaded: LoadedImage
    network_input: torch.Tensor | None = None


class ImageFiles(Dataset[ServedImage]):
    """Image files as :class:`ServedImage` items, their network input made by ``prepare``
    (none without it); unreadable ones carry their error."""

    def __init__(
        self, paths: Sequence[Path], max_pixels: int, prepare: Prepare | None = None
    ) -> None:
        self.paths = list(paths)
        self.max_pixels = int(max_pixels)
        self.prepare = prepare

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> ServedImage:
        path = self.paths[index]
        try:
            raw, image = read_for_segmenting(path, self.max_pixels)
        except ValueError as exc:  # ImageReadError, ImageTooLargeError: named in the message
            return ServedImage(LoadedImage(path.stem, path, error=str(exc)))
        loaded = LoadedImage(path.stem, path, raw=raw, image=image)
        return ServedImage(loaded, None if self.prepare is None else self.prepare(image))


def start_decoder(parent_pid: int, worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: end with the process ``parent_pid`` that started the
    worker and be stopped by it alone (:mod:`nuclei.parent_death`), at a lower CPU priority."""
    die_with_parent(parent_pid)
    leave_stopping_to_parent()
    lower_priority(worker_id)


def keep_as_list(items: list[ServedImage]) -> list[ServedImage]:
    """DataLoader ``collate_fn``: images of different sizes stay a list (no stacking)."""
    return list(items)


class ImageFilesDataModule(L.LightningDataModule):
    """Serves ``paths`` in order, ``images_per_batch`` at a time, decoded (and prepared for
    the network by ``prepare``) by ``workers``."""

    def __init__(
        self,
        paths: Sequence[Path],
        max_pixels: int,
        images_per_batch: int,
        workers: int,
        prepare: Prepare | None = None,
    ) -> None:
        super().__init__()
        if images_per_batch < 1:
            raise ValueError(f"images per batch must be >= 1, got {images_per_batch}")
        if workers < 0:
            raise ValueError(f"decode workers must be >= 0, got {workers}")
        self.images = ImageFiles(paths, max_pixels, prepare)
        self.images_per_batch = images_per_batch
        self.workers = workers

    def predict_dataloader(self) -> DataLoader:
        """The images in order, as lists of :class:`ServedImage`."""
        return DataLoader(
            self.images,
            batch_size=self.images_per_batch,
            shuffle=False,
            num_workers=self.workers,
            collate_fn=keep_as_list,
            worker_init_fn=partial(start_decoder, os.getpid()),
        )
