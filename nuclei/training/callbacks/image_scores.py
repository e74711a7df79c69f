"""Per-image DSB scores of a validation or test epoch, kept for a table of where a model fails.

:class:`ImageScores` turns on the task's instance metric's per-image rows for each
validation and test epoch (not the sanity check) and keeps the rows of the last epoch that
scored images, gathered from every process, each image once, with the ``source`` of each
image: the family (fluorescence, tissue, brightfield) of the synthetic set, else the name of
the folder the split was read from. The images are postprocessed and scored once, by the
metric that the task updates anyway; nothing else is computed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from nuclei.data.loading import locate_test_split
from nuclei.metrics.dsb import DSBInstanceMetric
from nuclei.synthetic import image_id, plan_sample


def synthetic_families(n_images: int, seed: int) -> dict[str, str]:
    """Image id -> family of the synthetic set of ``n_images`` drawn from ``seed`` (cheap)."""
    return {image_id(seed, k): plan_sample(seed, k).family for k in range(n_images)}


def split_folder(datamodule: Any, stage: str) -> str | None:
    """The name of the folder a split of a NucleiDataModule was read from, if known."""
    data_root = getattr(datamodule, "data_root", None)
    if not isinstance(data_root, Path):
        return None
    if stage == "test":
        test = locate_test_split(data_root, datamodule.source)
        return test[0].name if test else None
    return data_root.name


def image_sources(datamodule: Any, stage: str) -> tuple[dict[str, str], str | None]:
    """Where the images of a split come from: (id -> synthetic family, folder name)."""
    source = getattr(datamodule, "source", None)
    if source is not None and getattr(source, "root", "") is None:
        return synthetic_families(source.synthetic_images, source.synthetic_seed), None
    return {}, split_folder(datamodule, stage)


class ImageScores(Callback):
    """Keeps the per-image rows of the task's ``val_``/``test_instance_metric`` (``rows``)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    @staticmethod
    def rows_of(trainer: L.Trainer) -> list[dict[str, Any]]:
        """The rows kept by ``trainer``'s :class:`ImageScores` callback ([] without one)."""
        kept = [c.rows for c in trainer.callbacks if isinstance(c, ImageScores)]
        return kept[0] if kept else []

    @staticmethod
    def _metric(module: L.LightningModule, stage: str) -> DSBInstanceMetric | None:
        metric = getattr(module, f"{stage}_instance_metric", None)
        return metric if isinstance(metric, DSBInstanceMetric) else None

    def _start(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        metric = self._metric(module, stage)
        if metric is not None and not trainer.sanity_checking:
            metric.record_images = True
            metric.image_rows = []

    def _end(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        metric = self._metric(module, stage)
        if metric is None or not metric.record_images:
            return
        metric.record_images = False
        rows = metric.take_image_rows()  # every process calls it: a collective under DDP
        if rows:
            families, folder = image_sources(trainer.datamodule, stage)
            self.rows = [{**row, "source": families.get(row["id"], folder)} for row in rows]

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Start keeping the validation metric's per-image rows."""
        self._start(trainer, pl_module, "val")

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Take the validation epoch's rows (if it scored images)."""
        self._end(trainer, pl_module, "val")

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Start keeping the test metric's per-image rows."""
        self._start(trainer, pl_module, "test")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Take the test epoch's rows."""
        self._end(trainer, pl_module, "test")
