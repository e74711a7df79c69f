"""NucleiDataModule: DSB2018-style folders -> checked samples -> seeded split -> loaders."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import albumentations as A
import cv2
import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities.seed import pl_worker_init_function
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Sampler, get_worker_info

from nuclei.data.dataset import DecodedSamples, NucleiDataset, decode_samples, pad_collate
from nuclei.data.sources.layouts import (
    DataSource,
    LayoutError,
    SampleFiles,
    attach_solution,
    find_test_split,
    scan_folder,
)
from nuclei.data.targets import INSTANCE_TARGETS, check_target
from nuclei.data.validation import (
    ON_BAD_FILE,
    DataValidationError,
    SplitReport,
    check_bad_samples,
    some,
    warn,
)
from nuclei.runs.atomic import atomic_write_text
from nuclei.synthetic.generator import ensure_synthetic_dataset

log = logging.getLogger(__name__)

SIZE_MODES = ("resize", "crop")


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
    """Loads a DSB2018-style folder (or the embedded synthetic set) into train/val/test loaders.

    ``root=None`` uses the synthetic DSB2018-like set, generated once into ``cache_dir``.
    ``batch_size`` is per process (per GPU under DDP): the global batch is
    ``batch_size * devices * num_nodes``. Under DDP, validation and test samples are shared
    out without repeats (:meth:`eval_sampler`), so every one is scored exactly once.

    Every file is decoded once, at setup, and checked on the way: problems are gathered and
    reported together (see :mod:`nuclei.data.validation`). ``size_mode="resize"`` scales
    every image to ``image_size``; ``"crop"`` keeps native resolution, trains on random
    ``crop_size`` crops and validates/tests on whole images padded to ``pad_multiple``
    (those batches carry ``valid`` and ``size``, see :func:`pad_collate`).
    The test split is ``test_root`` (with ``test_labels`` for ``stage1_test``), or found next
    to the training data (``<root>/test`` or ``<root>/stage1_test`` + ``stage1_solution.csv``).

    ``target`` is what the network learns (:mod:`nuclei.data.targets`): ``binary`` (the
    foreground), ``border`` (foreground + the band of ``border_width`` pixels where nuclei
    touch) or ``distance``. The last two need true instances (Kaggle masks or a solution
    CSV); the flat layout's merged masks are refused for them.
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
        test_root: str | None = None,
        test_labels: str | None = None,
        size_mode: str = "resize",
        crop_size: int = 256,
        pad_multiple: int = 32,
        eval_batch_size: int | None = None,
        vflip: bool = False,
        rot90: bool = False,
        brightness_contrast: bool = False,
        invert: bool = False,
        on_bad_file: str = "error",
        target: str = "binary",
        border_width: int = 1,
    ) -> None:
        super().__init__()
        check_target(target)
        if border_width < 1:
            raise ValueError(f"border_width must be a positive integer, got {border_width}")
        if size_mode not in SIZE_MODES:
            raise ValueError(f"size_mode must be one of {SIZE_MODES}, got {size_mode!r}")
        if on_bad_file not in ON_BAD_FILE:
            raise ValueError(f"on_bad_file must be one of {ON_BAD_FILE}, got {on_bad_file!r}")
        for name, value in (
            ("image_size", image_size),
            ("crop_size", crop_size),
            ("pad_multiple", pad_multiple),
        ):
            if value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        self.root = root
        self.layout = layout
        self.image_size = image_size
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.hflip = hflip
        self.vflip = vflip
        self.rot90 = rot90
        self.brightness_contrast = brightness_contrast
        self.invert = invert
        self.num_workers = num_workers
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.augmentation_seed = augmentation_seed
        self.synthetic_images = synthetic_images
        self.synthetic_seed = synthetic_seed
        self.cache_dir = Path(cache_dir).expanduser()
        self.decode_workers = decode_workers
        self.split_file = split_file
        self.test_root = test_root
        self.test_labels = test_labels
        self.size_mode = size_mode
        self.crop_size = crop_size
        self.pad_multiple = pad_multiple
        self.eval_batch_size = eval_batch_size
        self.on_bad_file = on_bad_file
        self.target = target
        self.border_width = border_width
        self.train_dataset: NucleiDataset | None = None
        self.val_dataset: NucleiDataset | None = None
        self.test_dataset: NucleiDataset | None = None
        self.train_ids: list[str] = []
        self.val_ids: list[str] = []
        self.test_ids: list[str] = []
        self.reports: dict[str, SplitReport] = {}

    @property
    def data_root(self) -> Path:
        """The folder samples are read from (the synthetic set's when ``root`` is None)."""
        if self.root is not None:
            return Path(self.root).expanduser()
        name = f"synthetic-v1-n{self.synthetic_images}-seed{self.synthetic_seed}"
        return self.cache_dir / name / "stage1_train"

    def test_split_paths(self) -> tuple[Path, Path | None] | None:
        """``(test folder, solution CSV or None)``: ``test_root``, or one found next to the
        training data; None when there is no test split."""
        labels = Path(self.test_labels).expanduser() if self.test_labels else None
        if self.test_root is not None:
            return Path(self.test_root).expanduser(), labels
        found = find_test_split(self.data_root) if self.data_root.is_dir() else None
        if found is None:
            if labels is not None:
                raise LayoutError(
                    f"data.test_labels={labels} is set but data.test_root is not, and "
                    f"{self.data_root} holds no stage1_test/ folder"
                )
            return None
        return found[0], labels or found[1]

    @property
    def has_test_split(self) -> bool:
        """Whether ``setup("test")`` has a labelled test split to load (checks paths only)."""
        return self.test_split_paths() is not None

    def prepare_data(self) -> None:
        """Generate the synthetic set once (rank 0 only), if it is the data source."""
        if self.root is None:
            ensure_synthetic_dataset(
                self.cache_dir, n_images=self.synthetic_images, seed=self.synthetic_seed
            )

    def train_transform(self) -> A.Compose:
        """Training augmentation: random crop (crop mode), then the enabled flips, rotations
        and intensity changes, applied to image and mask together."""
        transforms: list[A.BasicTransform] = []
        if self.size_mode == "crop":
            size = self.crop_size
            transforms += [
                # Images smaller than a crop are mirrored out to it, labels with them.
                A.PadIfNeeded(
                    min_height=size,
                    min_width=size,
                    border_mode=cv2.BORDER_REFLECT_101,
                    fill=0,
                    fill_mask=0,
                ),
                A.RandomCrop(height=size, width=size),
            ]
        if self.hflip:
            transforms.append(A.HorizontalFlip(p=0.5))
        if self.vflip:
            transforms.append(A.VerticalFlip(p=0.5))
        if self.rot90:
            transforms.append(A.RandomRotate90(p=1.0))  # 0, 90, 180 or 270 degrees
        if self.brightness_contrast:
            transforms.append(
                A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5)
            )
        if self.invert:
            transforms.append(A.InvertImg(p=0.5))
        # Under DDP each process draws its own augmentations (with num_workers > 0 the
        # workers reseed anyway, from a seed that includes the rank).
        rank = self.trainer.global_rank if self.trainer is not None else 0
        return A.Compose(transforms, seed=self.augmentation_seed + rank)

    def setup(self, stage: str | None = None) -> None:
        """Find, check, split and decode the samples (once; later calls reuse them).

        ``validate`` loads train and val, ``test`` the test split. ``fit`` (and ``None``)
        load both where there is a test split, so that every problem in either is found,
        and reported in one error, before the first training step.
        """
        parts = []
        if stage in (None, "fit", "validate") and self.train_dataset is None:
            parts.append(self._setup_fit)
        wants_test = stage == "test" or (stage in (None, "fit") and self.has_test_split)
        if wants_test and self.test_dataset is None:
            parts.append(self._setup_test)
        errors = []
        for part in parts:
            try:
                part()
            except DataValidationError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            where = f"the training data ({self.data_root}) and the test data"
            hint = next((e.hint for e in errors if e.hint), "")
            raise DataValidationError(where, [p for e in errors for p in e.problems], hint)

    def check_instances(self, source: DataSource) -> None:
        """Refuse an instance target (border, distance) on merged masks, which lack instances."""
        if self.target not in INSTANCE_TARGETS:
            return
        merged = [s.sample_id for s in source.samples if not s.has_instances]
        if merged:
            raise LayoutError(
                f"data.target={self.target} needs the instance masks of each nucleus, but "
                f"{source.base} ({source.layout} layout) has one merged mask per image for "
                f"{len(merged)} sample(s) (e.g. {some(merged)}): instances there are only "
                "connected components, so touching nuclei are already merged and have no "
                "border between them to learn. Use data in the Kaggle layout (one mask per "
                "nucleus) or stage1_test with its solution CSV, or data.target=binary."
            )

    def _decode(
        self, source: DataSource, wanted: Sequence[str], report: SplitReport
    ) -> tuple[DecodedSamples, set[str]]:
        """Decode the ``wanted`` samples, gather every problem, drop (skip) or raise (error)."""
        by_id: dict[str, SampleFiles] = {s.sample_id: s for s in source.samples}
        ignored = [p for p in source.ignored if p.name not in ("Thumbs.db", "desktop.ini")]
        report.ignored_files = len(source.ignored)
        if ignored:
            log.info(
                "%s: ignored %d non-image file(s): %s",
                source.base,
                len(ignored),
                some(str(p.relative_to(source.base)) for p in ignored),
            )
        for note in source.notes:
            warn(report, note)
        decoded = decode_samples(
            [by_id[i] for i in wanted if i in by_id],
            image_size=self.image_size if self.size_mode == "resize" else None,
            workers=self.decode_workers,
            description=f"Decoding {len(wanted)} {report.split} samples",
        )
        bad = {i: source.bad[i] for i in wanted if i in source.bad} | decoded.failed
        dropped = check_bad_samples(bad, self.on_bad_file, report, str(source.base))
        if decoded.notes:
            warn(report, f"{len(decoded.notes)} warning(s) about masks in {source.base}:")
            for note in decoded.notes:
                warn(report, f"  {note}")
        report.empty = [
            i for i, lab in zip(decoded.ids, decoded.labels, strict=True) if not lab.any()
        ]
        if decoded.ids and len(report.empty) == len(decoded.ids):
            raise DataValidationError(
                str(source.base),
                [
                    f"none of its {len(decoded.ids)} images has a nucleus (no masks found); "
                    "is this an unlabelled test set? Labels for stage1_test come from "
                    "data.test_labels=<stage1_solution.csv>"
                ],
            )
        if report.empty:
            warn(
                report,
                f"{source.base}: {len(report.empty)} of {len(decoded.ids)} image(s) have no "
                f"masks or empty masks and are used as all background: {some(report.empty)}",
            )
        if not decoded.ids:
            raise DataValidationError(str(source.base), ["no usable sample is left"])
        return decoded, dropped

    def _setup_fit(self) -> None:
        source = scan_folder(self.data_root, self.layout, split="train")
        self.check_instances(source)
        report = SplitReport("train/val", str(self.data_root), source.layout)
        self.reports["train/val"] = report
        available = {s.sample_id for s in source.samples} | set(source.bad)
        report.found = len(available)
        if self.split_file is not None:
            train_ids, val_ids = read_split(self.split_file, dict.fromkeys(available))
        else:
            train_ids, val_ids = sorted(available), []
        decoded, dropped = self._decode(source, train_ids + val_ids, report)
        train_ids = [i for i in train_ids if i not in dropped]
        val_ids = [i for i in val_ids if i not in dropped]
        if self.split_file is None:
            train_ids, val_ids = split_ids(train_ids, self.val_fraction, self.split_seed)
        elif not train_ids or not val_ids:
            raise DataValidationError(
                self.split_file, ["after dropping bad samples, a side of the split is empty"]
            )
        self.train_ids, self.val_ids = train_ids, val_ids
        report.used = len(train_ids) + len(val_ids)
        log.info(
            "Data: %d samples from %s (%s layout) -> %d train / %d val%s",
            report.found,
            source.base,
            source.layout,
            len(train_ids),
            len(val_ids),
            f", {len(dropped)} dropped" if dropped else "",
        )
        self.train_dataset = self._dataset(decoded, train_ids, self.train_transform())
        self.val_dataset = self._dataset(decoded, val_ids, None)

    def _setup_test(self) -> None:
        paths = self.test_split_paths()
        if paths is None:
            raise LayoutError(
                f"no test split: set data.test_root (and data.test_labels=<stage1_solution.csv> "
                f"for Kaggle stage1_test), or put test/ (flat layout) or stage1_test/ with "
                f"stage1_solution.csv next to the training data in {self.data_root}"
            )
        root, labels = paths
        source = scan_folder(root, "auto", split="test")
        if labels is not None:
            source = attach_solution(source, labels)
        self.check_instances(source)
        report = SplitReport("test", str(root), source.layout, str(labels) if labels else None)
        self.reports["test"] = report
        wanted = sorted({s.sample_id for s in source.samples} | set(source.bad))
        report.found = len(wanted)
        decoded, dropped = self._decode(source, wanted, report)
        self.test_ids = [i for i in wanted if i not in dropped]
        report.used = len(self.test_ids)
        log.info(
            "Test data: %d samples from %s%s",
            len(self.test_ids),
            source.base,
            f" with labels from {labels}" if labels else "",
        )
        self.test_dataset = self._dataset(decoded, self.test_ids, None)

    def _dataset(
        self, decoded: DecodedSamples, ids: list[str], transform: A.Compose | None
    ) -> NucleiDataset:
        images, labels = decoded.select(ids)
        if self.size_mode == "resize":  # one size: stack into contiguous arrays
            size = self.image_size
            return NucleiDataset(
                np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8),
                np.stack(labels) if labels else np.zeros((0, size, size), np.int32),
                ids,
                transform,
                target=self.target,
                border_width=self.border_width,
            )
        return NucleiDataset(
            images, labels, ids, transform, target=self.target, border_width=self.border_width
        )

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
        return atomic_write_text(path, json.dumps(self.split_record(), indent=2))

    def data_report(self) -> dict[str, Any]:
        """What setup found, used and dropped, per split, with every warning."""
        return {name: report.as_dict() for name, report in self.reports.items()}

    def write_data_report(self, path: str | Path) -> Path:
        """Write :meth:`data_report` as JSON to ``path`` (``<run_dir>/data_report.json``)."""
        return atomic_write_text(path, json.dumps(self.data_report(), indent=2) + "\n")

    def eval_sampler(self, dataset: NucleiDataset) -> Sampler | None:
        """Under DDP, this process's share of an evaluation split; None on one process.

        Lightning's own ``DistributedSampler`` pads the split with repeated samples until it
        divides by the number of processes, which would score those twice. Here process
        ``r`` of ``n`` takes samples ``r, r + n, r + 2n, ...``. Some processes may then run one
        batch fewer. That is safe as long as each runs at least one: without gradients, DDP
        syncs buffers only before the first forward, and metrics are gathered once, at the
        end of the epoch (none is synced per step).
        """
        trainer = self.trainer
        kwargs = trainer.distributed_sampler_kwargs if trainer is not None else None
        if not kwargs or kwargs["num_replicas"] < 2:
            return None
        replicas = kwargs["num_replicas"]
        if len(dataset) < replicas:
            raise ValueError(
                f"an evaluation split of {len(dataset)} sample(s) cannot feed {replicas} "
                "processes: every process needs at least one; use fewer devices or a larger "
                "split (data.val_fraction)"
            )
        return UnrepeatedDistributedSampler(
            dataset, num_replicas=replicas, rank=kwargs["rank"], shuffle=False
        )

    def _loader(self, dataset: NucleiDataset | None, train: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError("NucleiDataModule.setup() must run before asking for loaders")
        collate = None
        sampler = None if train else self.eval_sampler(dataset)
        batch_size = self.batch_size
        if not train:
            if self.size_mode == "crop":
                collate = partial(pad_collate, multiple=self.pad_multiple)
                batch_size = self.eval_batch_size or 1
            else:
                batch_size = self.eval_batch_size or self.batch_size
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=train,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            worker_init_fn=seed_augmentation_worker if self.num_workers > 0 else None,
            collate_fn=collate,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled, augmented training batches."""
        return self._loader(self.train_dataset, train=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches in a fixed order, without augmentation."""
        return self._loader(self.val_dataset, train=False)

    def test_dataloader(self) -> DataLoader:
        """Test batches in a fixed order, without augmentation (after ``setup("test")``)."""
        return self._loader(self.test_dataset, train=False)
