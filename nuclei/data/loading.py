"""Load a split from a folder: scan -> instance check -> decode, gathering problems -> dataset.

Every problem of a split is gathered and reported together (see
:mod:`nuclei.data.validation`); what was found, used and dropped goes into its
:class:`~nuclei.data.validation.SplitReport`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import albumentations as A
import numpy as np

from nuclei.data.config import (
    AugmentationConfig,
    IntensityConfig,
    SizeConfig,
    SourceConfig,
    SplitConfig,
    TargetConfig,
)
from nuclei.data.dataset import NucleiDataset
from nuclei.data.decode import DecodedSamples, decode_samples, resize_sample
from nuclei.data.kinds import image_kinds, kinds_summary
from nuclei.data.sources.layouts import (
    DataSource,
    LayoutError,
    SampleFiles,
    attach_solution,
    find_test_split,
    scan_folder,
)
from nuclei.data.splits import draw_split, pinned_split, split_kinds, user_groups
from nuclei.data.targets import INSTANCE_TARGETS
from nuclei.data.transforms import train_transform
from nuclei.data.validation import DataValidationError, SplitReport, check_bad_samples, some, warn

log = logging.getLogger(__name__)


@dataclass
class FitSplits:
    """The training and validation sides of a folder, decoded."""

    train_ids: list[str]
    val_ids: list[str]
    train: NucleiDataset | None  # None: only the validation images were decoded
    val: NucleiDataset
    strata: dict[str, str] = field(default_factory=dict)  # id -> what the split stratified by
    folds: int | None = None  # the number of cross-validation folds, when a fold
    image_kinds: dict[str, str] = field(default_factory=dict)  # id -> image kind, every id


@dataclass
class LabelledTestSplit:
    """A labelled test split, decoded."""

    ids: list[str]
    dataset: NucleiDataset
    image_kinds: dict[str, str] = field(default_factory=dict)  # id -> image kind


def _kinds(decoded: DecodedSamples, ids: list[str]) -> dict[str, str]:
    """The image kind of each of ``ids``, from its decoded image."""
    return image_kinds(ids, decoded.select(ids)[0])


def locate_test_split(data_root: Path, source: SourceConfig) -> tuple[Path, Path | None] | None:
    """``(test folder, solution CSV or None)``: ``source.test_root``, or one found next to
    the training data in ``data_root``; None when there is no test split."""
    labels = Path(source.test_labels).expanduser() if source.test_labels else None
    if source.test_root is not None:
        return Path(source.test_root).expanduser(), labels
    found = find_test_split(data_root) if data_root.is_dir() else None
    if found is None:
        if labels is not None:
            raise LayoutError(
                f"data.source.test_labels={labels} is set but data.source.test_root is not, "
                f"and {data_root} holds no stage1_test/ folder"
            )
        return None
    return found[0], labels or found[1]


def check_instances(decoded: DecodedSamples, base: Path, target: str) -> None:
    """Refuse an instance target (border, distance) on binary merged masks of several nuclei,
    whose instances are only connected components (label images and one mask per nucleus
    give them exactly)."""
    if target not in INSTANCE_TARGETS or not decoded.guessed:
        return
    raise LayoutError(
        f"data.target.kind={target} needs each nucleus apart, but {len(decoded.guessed)} "
        f"mask(s) in {base} are binary (one value for all their nuclei), e.g. "
        f"{decoded.guessed[0]}: touching nuclei there are one connected component, with no "
        "border between them to learn. Give label images (one integer per nucleus), one mask "
        "file per nucleus (Kaggle layout) or stage1_test with its solution CSV; or use "
        "data.target.kind=binary."
    )


def _note_source(source: DataSource, report: SplitReport) -> None:
    """Log the ignored files and keep the scan's notes as warnings."""
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


def _check_labels(decoded: DecodedSamples, source: DataSource, report: SplitReport) -> None:
    """Warn about images without nuclei; refuse a folder where no image has one."""
    report.empty = [i for i, lab in zip(decoded.ids, decoded.labels, strict=True) if not lab.any()]
    if decoded.ids and len(report.empty) == len(decoded.ids):
        raise DataValidationError(
            str(source.base),
            [
                f"none of its {len(decoded.ids)} images has a nucleus (no masks found); "
                "is this an unlabelled test set? Labels for stage1_test come from "
                "data.source.test_labels=<stage1_solution.csv>"
            ],
        )
    if report.empty:
        warn(
            report,
            f"{source.base}: {len(report.empty)} of {len(decoded.ids)} image(s) have no "
            f"masks or empty masks and are used as all background: {some(report.empty)}",
        )


def _resized(
    images: list[np.ndarray], labels: list[np.ndarray], side: int
) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels resized to ``side`` x ``side`` and stacked (resize mode)."""
    if not images:
        return np.zeros((0, side, side, 3), np.uint8), np.zeros((0, side, side), np.int32)
    pairs = [resize_sample(image, label, side) for image, label in zip(images, labels, strict=True)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def make_dataset(
    decoded: DecodedSamples,
    ids: list[str],
    transform: A.Compose | None,
    data: DatasetSettings,
    evaluation: bool = False,
) -> NucleiDataset:
    """A dataset of the decoded ``ids`` (decoded at their own size).

    Crop mode keeps every image at its own size. Resize mode stacks images and labels resized
    to ``size.image_size``; an ``evaluation`` split also keeps each image's labels at its own
    size, so that it is scored on its own pixels (:mod:`nuclei.data.batches`).
    """
    images, labels = decoded.select(ids)
    settings = {
        "target": data.target.kind,
        "border_width": data.target.border_width,
        "intensity": data.intensity,
    }
    if data.size.mode == "crop":
        return NucleiDataset(images, labels, ids, transform, **settings)
    resized_images, resized_labels = _resized(images, labels, data.size.image_size)
    native = labels if evaluation else None
    return NucleiDataset(
        resized_images, resized_labels, ids, transform, native_labels=native, **settings
    )


@dataclass(frozen=True)
class DatasetSettings:
    """What shapes a dataset's samples: their size, their normalisation and their target."""

    size: SizeConfig
    intensity: IntensityConfig
    target: TargetConfig


@dataclass
class FolderLoader:
    """Loads the splits of data folders as the ``source`` and ``data`` settings say; each
    split's report goes into ``reports`` as soon as it is made, so a failed load still tells
    what it found."""

    source: SourceConfig
    data: DatasetSettings
    reports: dict[str, SplitReport] = field(default_factory=dict)

    def decode(
        self, source: DataSource, wanted: Sequence[str], report: SplitReport
    ) -> tuple[DecodedSamples, set[str]]:
        """Decode the ``wanted`` samples, gather every problem, drop (skip) or raise (error)."""
        by_id: dict[str, SampleFiles] = {s.sample_id: s for s in source.samples}
        _note_source(source, report)
        decoded = decode_samples(
            [by_id[i] for i in wanted if i in by_id],
            workers=self.source.decode_workers,
            description=f"Decoding {len(wanted)} {report.split} samples",
        )
        bad = {i: source.bad[i] for i in wanted if i in source.bad} | decoded.failed
        dropped = check_bad_samples(bad, self.source.on_bad_file, report, str(source.base))
        if decoded.notes:
            warn(report, f"{len(decoded.notes)} warning(s) about masks in {source.base}:")
            for note in decoded.notes:
                warn(report, f"  {note}")
        _check_labels(decoded, source, report)
        check_instances(decoded, source.base, self.data.target.kind)
        if not decoded.ids:
            raise DataValidationError(str(source.base), ["no usable sample is left"])
        return decoded, dropped

    def load_fit(
        self,
        root: Path,
        split: SplitConfig,
        augmentation: AugmentationConfig,
        rank: int = 0,
        with_train: bool = True,
    ) -> FitSplits:
        """The train and val sides of ``root``: drawn from ``split.seed``, a fold of
        ``split.folds_file``, or read from ``split.file``; training samples are augmented
        (seed ``augmentation.seed + rank``). Without ``with_train``, a pinned split (a file)
        decodes its validation images only and has no training dataset (``train`` None)."""
        source = scan_folder(root, self.source.layout, split="train")
        report = SplitReport("train/val", str(root), source.layout)
        self.reports["train/val"] = report
        available = {s.sample_id for s in source.samples} | set(source.bad)
        report.found = len(available)
        pinned = pinned_split(split, available)
        groups = user_groups(split, available)
        train_ids, val_ids, folds = pinned or (sorted(available), [], None)
        val_only = pinned is not None and not with_train  # e.g. nuclei-eval, nuclei-tune
        decoded, dropped = self.decode(source, val_ids if val_only else train_ids + val_ids, report)
        train_ids = [i for i in train_ids if i not in dropped]
        val_ids = [i for i in val_ids if i not in dropped]
        counted = val_ids if val_only else train_ids + val_ids
        kind_of = _kinds(decoded, counted)
        kinds = split_kinds(split, counted, groups, kind_of)
        if pinned is None:
            train_ids, val_ids, folds = draw_split(train_ids, split, kinds or None)
        if kinds:
            log.info(
                "Data: images per %s, train/val: %s",
                "group" if groups else "kind",
                kinds_summary(train_ids, val_ids, kinds),
            )
        if not train_ids or not val_ids:
            raise DataValidationError(
                str(split.file or split.folds_file),
                ["after dropping bad samples, a side of the split is empty"],
            )
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
        transform = train_transform(self.data.size, augmentation, rank)
        return FitSplits(
            train_ids,
            val_ids,
            None if val_only else make_dataset(decoded, train_ids, transform, self.data),
            make_dataset(decoded, val_ids, None, self.data, evaluation=True),
            kinds,
            folds,
            kind_of,
        )

    def load_test(self, root: Path, labels: Path | None) -> LabelledTestSplit:
        """The labelled test split in ``root`` (its labels from the solution CSV ``labels``)."""
        source = scan_folder(root, "auto", split="test")
        if labels is not None:
            source = attach_solution(source, labels)
        report = SplitReport("test", str(root), source.layout, str(labels) if labels else None)
        self.reports["test"] = report
        wanted = sorted({s.sample_id for s in source.samples} | set(source.bad))
        report.found = len(wanted)
        decoded, dropped = self.decode(source, wanted, report)
        ids = [i for i in wanted if i not in dropped]
        report.used = len(ids)
        log.info(
            "Test data: %d samples from %s%s",
            len(ids),
            source.base,
            f" with labels from {labels}" if labels else "",
        )
        dataset = make_dataset(decoded, ids, None, self.data, evaluation=True)
        return LabelledTestSplit(ids, dataset, _kinds(decoded, ids))
