"""NucleiDataModule: DSB2018-style folders -> checked samples -> seeded split -> loaders."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Sampler

from nuclei.data.config import (
    AugmentationConfig,
    IntensityConfig,
    LoaderConfig,
    SizeConfig,
    SourceConfig,
    SplitConfig,
    TargetConfig,
    as_config,
)
from nuclei.data.dataset import NucleiDataset, native_collate, pad_collate
from nuclei.data.loading import DatasetSettings, FolderLoader, locate_test_split
from nuclei.data.sources.layouts import LayoutError
from nuclei.data.splits import split_record
from nuclei.data.transforms import seed_augmentation_worker
from nuclei.data.validation import DataValidationError, SplitReport
from nuclei.runtime import die_with_parent, leave_stopping_to_parent
from nuclei.synthetic import ensure_synthetic_dataset, synthetic_root

Section = Mapping[str, Any]


def start_loader_worker(parent_pid: int, worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: end with the process ``parent_pid`` that started the
    worker and be stopped by it alone (:mod:`nuclei.runtime`); seed its augmentation."""
    die_with_parent(parent_pid)
    leave_stopping_to_parent()
    seed_augmentation_worker(worker_id)


class NucleiDataModule(L.LightningDataModule):
    """Loads a DSB2018-style folder (or the embedded synthetic set) into train/val/test loaders.

    Each argument is one group of the ``data`` config (:mod:`nuclei.data.config`), as its
    dataclass or a mapping (a config rebuilt from a checkpoint); None takes the defaults.
    ``source.root=None`` uses the synthetic DSB2018-like set, generated once into
    ``source.cache_dir``. ``loader.batch_size`` is per process (per GPU under DDP): the global
    batch is ``batch_size * devices * num_nodes``. Under DDP, validation and test samples are
    shared out without repeats (:meth:`eval_sampler`), so every one is scored exactly once.

    Every file is decoded once, at setup, and checked on the way: problems are gathered and
    reported together (see :mod:`nuclei.data.loading`). ``size.mode="resize"`` scales
    every image to ``size.image_size`` (validation and test batches also carry each image's
    labels at its own size, ``native_labels``, see :func:`native_collate`); ``"crop"`` keeps
    native resolution, trains on random ``size.crop_size`` crops and validates/tests on whole
    images padded to ``size.pad_multiple`` (those batches carry ``valid`` and ``size``, see
    :func:`pad_collate`). Either way evaluation scores every image at its own size. Images
    are normalised as ``intensity`` says (:mod:`nuclei.data.intensity`).
    The test split is ``source.test_root`` (with ``source.test_labels`` for ``stage1_test``), or
    found next to the training data (``<root>/test`` or ``<root>/stage1_test`` +
    ``stage1_solution.csv``).

    ``target.kind`` is what the network learns (:mod:`nuclei.data.targets`): ``binary`` (the
    foreground), ``border`` (foreground + the band of ``target.border_width`` pixels where
    nuclei touch) or ``distance``. The last two need true instances (Kaggle masks or a
    solution CSV); the flat layout's merged masks are refused for them.
    """

    def __init__(
        self,
        source: SourceConfig | Section | None = None,
        size: SizeConfig | Section | None = None,
        augmentation: AugmentationConfig | Section | None = None,
        intensity: IntensityConfig | Section | None = None,
        split: SplitConfig | Section | None = None,
        target: TargetConfig | Section | None = None,
        loader: LoaderConfig | Section | None = None,
    ) -> None:
        super().__init__()
        self.source = as_config(SourceConfig, source)
        self.size = as_config(SizeConfig, size)
        self.augmentation = as_config(AugmentationConfig, augmentation)
        self.intensity = as_config(IntensityConfig, intensity)
        self.split = as_config(SplitConfig, split)
        self.target = as_config(TargetConfig, target)
        self.loader = as_config(LoaderConfig, loader)
        pin_memory = self.loader.pin_memory
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.train_dataset: NucleiDataset | None = None
        self.val_dataset: NucleiDataset | None = None
        self.test_dataset: NucleiDataset | None = None
        self.train_ids: list[str] = []
        self.val_ids: list[str] = []
        self.strata: dict[str, str] = {}  # what the split was stratified by, per id
        #: The image kind (fluorescence, tissue, brightfield) of every id decoded so far.
        self.image_kinds: dict[str, str] = {}
        self.fold_count: int | None = None  # folds of the cross-validation, when a fold
        self.test_ids: list[str] = []
        self.reports: dict[str, SplitReport] = {}
        settings = DatasetSettings(self.size, self.intensity, self.target)
        self.folders = FolderLoader(self.source, settings, self.reports)

    @property
    def data_root(self) -> Path:
        """The folder samples are read from (the synthetic set's when ``source.root`` is None)."""
        source = self.source
        if source.root is not None:
            return Path(source.root).expanduser()
        cache_dir = Path(source.cache_dir).expanduser()
        return synthetic_root(
            cache_dir, source.synthetic_images, source.synthetic_seed, source.synthetic_profile
        )

    @property
    def has_test_split(self) -> bool:
        """Whether ``setup("test")`` has a labelled test split to load (checks paths only)."""
        return locate_test_split(self.data_root, self.source) is not None

    def prepare_data(self) -> None:
        """Generate the synthetic set once (rank 0 only), if it is the data source."""
        if self.source.root is None:
            ensure_synthetic_dataset(
                Path(self.source.cache_dir).expanduser(),
                n_images=self.source.synthetic_images,
                seed=self.source.synthetic_seed,
                profile=self.source.synthetic_profile,
            )

    def setup(self, stage: str | None = None) -> None:
        """Find, check, split and decode the samples (once; later calls reuse them).

        ``validate`` loads train and val (only val when the split is a file, as a finished
        run's is for nuclei-eval and nuclei-tune), ``test`` the test split. ``fit`` (and ``None``)
        load both where there is a test split, so that every problem in either is found,
        and reported in one error, before the first training step.
        """
        parts = []
        if stage in (None, "fit") and self.train_dataset is None:
            parts.append(self._setup_fit)
        elif stage == "validate" and self.val_dataset is None:
            parts.append(self._setup_validate)
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

    def _setup_validate(self) -> None:
        self._setup_fit(with_train=False)

    def _setup_fit(self, with_train: bool = True) -> None:
        rank = self.trainer.global_rank if self.trainer is not None else 0
        fit = self.folders.load_fit(
            self.data_root, self.split, self.augmentation, rank, with_train=with_train
        )
        self.train_ids, self.val_ids, self.strata = fit.train_ids, fit.val_ids, fit.strata
        self.image_kinds.update(fit.image_kinds)
        self.fold_count = fit.folds
        self.train_dataset, self.val_dataset = fit.train, fit.val

    def _setup_test(self) -> None:
        paths = locate_test_split(self.data_root, self.source)
        if paths is None:
            raise LayoutError(
                "no test split: set data.source.test_root (and "
                "data.source.test_labels=<stage1_solution.csv> for Kaggle stage1_test), or "
                "put test/ (flat layout) or stage1_test/ with stage1_solution.csv next to the "
                f"training data in {self.data_root}"
            )
        test = self.folders.load_test(*paths)
        self.test_ids, self.test_dataset = test.ids, test.dataset
        self.image_kinds.update(test.image_kinds)

    def split_record(self) -> dict[str, Any]:
        """The split as saved in the run directory: settings and the ids of each side."""
        return split_record(
            self.data_root,
            self.split.val_fraction,
            self.split.seed,
            self.train_ids,
            self.val_ids,
            kinds=self.strata,
            folds=self.fold_count,
            fold=self.split.fold,
            folds_file=self.split.folds_file if self.split.file is None else None,
            groups_file=self.split.groups_file if self.split.file is None else None,
        )

    def data_report(self) -> dict[str, Any]:
        """What setup found, used and dropped, per split, with every warning."""
        return {name: report.as_dict() for name, report in self.reports.items()}

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
                "split (data.split.val_fraction)"
            )
        return UnrepeatedDistributedSampler(
            dataset, num_replicas=replicas, rank=kwargs["rank"], shuffle=False
        )

    def _loader(self, dataset: NucleiDataset | None, train: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError("NucleiDataModule.setup() must run before asking for loaders")
        collate = None
        sampler = None if train else self.eval_sampler(dataset)
        batch_size = self.loader.batch_size
        eval_batch_size = self.loader.eval_batch_size
        if not train:
            if self.size.mode == "crop":
                collate = partial(pad_collate, multiple=self.size.pad_multiple)
                batch_size = eval_batch_size or 1
            else:  # resized images, scored against their labels at their own size
                collate = native_collate
                batch_size = eval_batch_size or self.loader.batch_size
        workers = self.loader.num_workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=train,
            sampler=sampler,
            num_workers=workers,
            pin_memory=self.pin_memory,
            persistent_workers=workers > 0,
            worker_init_fn=partial(start_loader_worker, os.getpid()) if workers > 0 else None,
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
