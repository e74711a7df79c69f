"""NucleiDataModule: DSB2018-style folders -> seeded train/val split -> augmented loaders."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import albumentations as A
import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities.seed import pl_worker_init_function
from torch.utils.data import DataLoader, get_worker_info

from nuclei.data.dataset import NucleiDataset, load_samples
from nuclei.data.layouts import SampleFiles, find_samples
from nuclei.data.synthetic import ensure_synthetic_dataset

log = logging.getLogger(__name__)


def split_ids(sample_ids: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Split ids into (train, val) with a seeded permutation of the sorted ids."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if len(sample_ids) < 2:
        raise ValueError(f"need at least 2 samples to split, got {len(sample_ids)}")
    ordered = sorted(sample_ids)
    permutation = np.random.default_rng(seed).permutation(len(ordered))
    n_val = min(max(1, round(len(ordered) * val_fraction)), len(ordered) - 1)
    val = sorted(ordered[i] for i in permutation[:n_val])
    train = sorted(ordered[i] for i in permutation[n_val:])
    return train, val


def read_split(path: str | Path, available: Mapping[str, object]) -> tuple[list[str], list[str]]:
    """Read a recorded split (``split.json``); every id in it must be among ``available``."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
        train, val = list(record["train"]), list(record["val"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{path}: not a split file with 'train' and 'val' id lists ({exc})"
        ) from exc
    missing = sorted(set(train + val) - set(available))
    if missing:
        raise ValueError(
            f"{path}: {len(missing)} recorded id(s) are not in the data: "
            + ", ".join(missing[:5])
            + (" ..." if len(missing) > 5 else "")
        )
    return train, val


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


class NucleiDataModule(L.LightningDataModule):
    """Loads a DSB2018-style folder (or the embedded synthetic set) into train/val loaders.

    ``root=None`` uses the synthetic DSB2018-like set, generated once into ``cache_dir``.
    ``batch_size`` is per process (per GPU under DDP): the global batch is
    ``batch_size * devices * num_nodes``.
    """

    def __init__(
        self,
        root: str | None = None,
        layout: str = "auto",
        image_size: int = 128,
        batch_size: int = 16,
        val_fraction: float = 0.2,
        split_seed: int = 0,
        hflip: bool = True,
        num_workers: int = 0,
        pin_memory: bool | None = None,
        augmentation_seed: int = 0,
        synthetic_images: int = 670,
        synthetic_seed: int = 0,
        cache_dir: str = "~/.cache/nuclei",
        decode_workers: int | None = None,
        split_file: str | None = None,
    ) -> None:
        super().__init__()
        self.root = root
        self.layout = layout
        self.image_size = image_size
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.hflip = hflip
        self.num_workers = num_workers
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.augmentation_seed = augmentation_seed
        self.synthetic_images = synthetic_images
        self.synthetic_seed = synthetic_seed
        self.cache_dir = Path(cache_dir).expanduser()
        self.decode_workers = decode_workers
        self.split_file = split_file
        self.train_dataset: NucleiDataset | None = None
        self.val_dataset: NucleiDataset | None = None
        self.train_ids: list[str] = []
        self.val_ids: list[str] = []

    @property
    def data_root(self) -> Path:
        """The folder samples are read from (the synthetic set's when ``root`` is None)."""
        if self.root is not None:
            return Path(self.root).expanduser()
        name = f"synthetic-v1-n{self.synthetic_images}-seed{self.synthetic_seed}"
        return self.cache_dir / name / "stage1_train"

    def prepare_data(self) -> None:
        """Generate the synthetic set once (rank 0 only), if it is the data source."""
        if self.root is None:
            ensure_synthetic_dataset(
                self.cache_dir, n_images=self.synthetic_images, seed=self.synthetic_seed
            )

    def train_transform(self) -> A.Compose:
        """Training augmentation: horizontal flip of image and mask together (p=0.5)."""
        transforms = [A.HorizontalFlip(p=0.5)] if self.hflip else []
        return A.Compose(transforms, seed=self.augmentation_seed)

    def setup(self, stage: str | None = None) -> None:
        """Find, split and decode the samples (once; later calls reuse them)."""
        if self.train_dataset is not None:
            return
        samples = find_samples(self.data_root, self.layout)
        by_id: dict[str, SampleFiles] = {s.sample_id: s for s in samples}
        if self.split_file is not None:
            self.train_ids, self.val_ids = read_split(self.split_file, by_id)
        else:
            self.train_ids, self.val_ids = split_ids(
                list(by_id), self.val_fraction, self.split_seed
            )
        log.info(
            "Data: %d samples from %s -> %d train / %d val",
            len(samples),
            self.data_root,
            len(self.train_ids),
            len(self.val_ids),
        )
        images, labels = load_samples(
            [by_id[i] for i in self.train_ids + self.val_ids],
            self.image_size,
            workers=self.decode_workers,
            description=f"Decoding {len(samples)} samples",
        )
        n_train = len(self.train_ids)
        self.train_dataset = NucleiDataset(
            images[:n_train], labels[:n_train], self.train_ids, self.train_transform()
        )
        self.val_dataset = NucleiDataset(images[n_train:], labels[n_train:], self.val_ids)

    def split_record(self) -> dict[str, Any]:
        """The split as saved in the run directory: settings and the ids of each side."""
        return {
            "root": str(self.data_root),
            "val_fraction": self.val_fraction,
            "split_seed": self.split_seed,
            "train": self.train_ids,
            "val": self.val_ids,
        }

    def write_split(self, path: str | Path) -> Path:
        """Write :meth:`split_record` as JSON to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.split_record(), indent=2))
        return path

    def _loader(self, dataset: NucleiDataset | None, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError("NucleiDataModule.setup() must run before asking for loaders")
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            worker_init_fn=seed_augmentation_worker if self.num_workers > 0 else None,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled, augmented training batches."""
        return self._loader(self.train_dataset, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches in a fixed order, without augmentation."""
        return self._loader(self.val_dataset, shuffle=False)
