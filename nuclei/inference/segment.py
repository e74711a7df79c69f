"""Segment image files through a Lightning Trainer: read, predict, postprocess, write, report.

:func:`segment_files` is ``nuclei-predict`` and :meth:`nuclei.Segmenter.segment_files`:
DataLoader workers decode the files (:class:`ImageFilesDataModule`), ``trainer.predict``
runs the network on each process's share (:class:`ProbabilityModule`), and the prediction
writer (:class:`WriteSegmentedImages`) postprocesses and writes every image in worker
processes. Unreadable or oversized files are recorded, not fatal. Images an
earlier run into the same output completed are skipped (see
:mod:`nuclei.inference.output_folder`), and the tables are assembled from the records.

Images are decoded, and made into what the network sees (resized and normalised, as the
prediction settings say), in DataLoader worker processes at a lower CPU priority
(:mod:`nuclei.runtime`), while the network works on the previous batch: the
process that runs the network only batches them. Under DDP the Trainer gives each process
its own share of the files (Lightning's unrepeated sampler for prediction: every image to
exactly one process).

:class:`ProbabilityModule`, the network's part as a LightningModule, runs a trained network
(one checkpoint, an ensemble, with or without test-time augmentation) on batches of
:class:`ServedImage` the way the run was trained
(:func:`nuclei.inference.probabilities.predict_probabilities`: resized, or tiled at native
resolution) on whatever device the Trainer gave this process.

The prediction writer :class:`WriteSegmentedImages` receives every batch predicted, hands
the images to a :class:`~nuclei.inference.postprocess_pool.PostprocessPool` (so
postprocessing overlaps the network) and records each unreadable image's error. It runs in
every process of a DDP prediction, on that process's share of the images.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import BasePredictionWriter, Callback
from rich.progress import Progress, TaskID
from torch import nn
from torch.utils.data import DataLoader, Dataset

from nuclei.inference.image_files import LoadedImage, read_for_segmenting
from nuclei.inference.output_files import write_tables
from nuclei.inference.output_folder import (
    ImageRecord,
    complete_images,
    forget_images,
    load_failure,
    load_record,
    remove_leftovers,
    save_failure,
    save_share,
)
from nuclei.inference.postprocess_pool import Finishing, PostprocessPool
from nuclei.inference.probabilities import PredictionSettings
from nuclei.runtime import die_with_parent, leave_stopping_to_parent, lower_priority, progress_bar

log = logging.getLogger(__name__)


TrainerFactory = Callable[[list[Callback]], L.Trainer]


@dataclass
class PredictionReport:
    """What a prediction did: images segmented, nuclei found, files that failed."""

    output_dir: Path
    images: list[str] = field(default_factory=list)
    nuclei: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    #: Images an earlier run had completed, not segmented again.
    skipped: int = 0


@dataclass(frozen=True)
class FileOptions:
    """How files are read and worked on: pixel limit, redo, worker processes, progress bar."""

    max_pixels: int = 200_000_000
    overwrite: bool = False
    decode_workers: int = 1
    postprocess_workers: int = 1
    progress: bool = True


def images_to_do(
    output_dir: Path, paths: Sequence[Path], overwrite: bool
) -> tuple[list[Path], int]:
    """The files still to segment into ``output_dir`` and how many were complete already.

    With ``overwrite`` every file is redone (its old record forgotten first, so a run killed
    while redoing it does not count it complete).
    """
    if overwrite:
        forget_images(output_dir, [p.stem for p in paths])
        return list(paths), 0
    done = complete_images(output_dir, [p.stem for p in paths])
    return [p for p in paths if p.stem not in done], len(done)


def segment_files(
    make_trainer: TrainerFactory,
    net: nn.Module,
    settings: PredictionSettings,
    finishing: Finishing,
    paths: Sequence[Path],
    options: FileOptions,
) -> PredictionReport:
    """Segment ``paths`` with ``net`` into ``finishing.writer.output_dir``; see the module.

    ``make_trainer(callbacks)`` builds the Trainer (one device, or DDP: every process runs
    this function and segments its share). The caller has checked that the folder's earlier
    images were made with the same settings (:func:`~nuclei.inference.output_folder.
    check_settings`).
    """
    output_dir = finishing.writer.output_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    remove_leftovers(output_dir)  # before any process starts writing
    todo, skipped = images_to_do(output_dir, paths, options.overwrite)
    if skipped:
        log.info("%d of %d image(s) complete in %s: skipped", skipped, len(paths), output_dir)
    if todo:
        writer = WriteSegmentedImages(
            finishing, options.postprocess_workers, options.progress, settings.images_per_batch
        )
        trainer = make_trainer([writer])
        data = ImageFilesDataModule(
            todo,
            options.max_pixels,
            settings.images_per_batch,
            options.decode_workers,
            settings.network_input,
        )
        trainer.predict(ProbabilityModule(net, settings), datamodule=data, return_predictions=False)
        _record_share(output_dir, trainer, writer.written)
        trainer.strategy.barrier()  # every process's images written
        first_process = trainer.is_global_zero
    else:  # no Trainer, no DDP processes started: under srun every task gets here
        first_process = rank_zero_only.rank == 0
    properties = finishing.writer.properties
    return _report(output_dir, paths, skipped, write=first_process, properties=properties)


def _record_share(output_dir: Path, trainer: L.Trainer, written: list[str]) -> None:
    """Log and record (:func:`~nuclei.inference.output_folder.save_share`) the images this
    process wrote in this run: under DDP, the shares show every image went to one process."""
    rank, size = trainer.global_rank, trainer.world_size
    log.info("Process %d of %d wrote %d image(s)", rank + 1, size, len(written))
    save_share(output_dir, rank, size, written)


def _report(
    output_dir: Path,
    paths: Sequence[Path],
    skipped: int,
    write: bool,
    properties: Sequence[str] | None = None,
) -> PredictionReport:
    """The report of the whole input from the records; ``write``: also the three tables."""
    report = PredictionReport(output_dir=output_dir, skipped=skipped)
    records: list[ImageRecord] = []
    for path in paths:
        record = load_record(output_dir, path.stem)
        if record is None:
            report.failures[str(path)] = load_failure(output_dir, path.stem) or (
                f"{path}: was not segmented"
            )
            continue
        records.append(record)
        report.images.append(record.image_id)
        report.nuclei += record.count
    if write:
        write_tables(output_dir, records, properties)
    return report


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
    worker and be stopped by it alone (:mod:`nuclei.runtime`), at a lower CPU priority."""
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


@dataclass
class PredictedImage:
    """One loaded image with its probabilities (C, H, W), or its error when unreadable."""

    loaded: LoadedImage
    probabilities: np.ndarray | None


class ProbabilityModule(L.LightningModule):
    """Probabilities of image files, by a network with its prediction settings."""

    def __init__(self, net: nn.Module, settings: PredictionSettings) -> None:
        super().__init__()
        self.net = net.eval()
        self.settings = settings

    def predict_step(
        self, batch: list[ServedImage], batch_idx: int, dataloader_idx: int = 0
    ) -> list[PredictedImage]:
        """Probabilities of the readable images of ``batch`` (from the network inputs the DataLoader
        workers made, when they did); unreadable ones pass through unmapped."""
        readable = [item for item in batch if item.loaded.error is None]
        images = [item.loaded.image for item in readable]
        inputs = [item.network_input for item in readable]
        prepared = all(tensor is not None for tensor in inputs)
        probabilities = self.settings.probabilities(
            self.net, images, self.device, inputs if prepared else None
        )
        by_id = {item.loaded.image_id: p for item, p in zip(readable, probabilities, strict=True)}
        return [PredictedImage(item.loaded, by_id.get(item.loaded.image_id)) for item in batch]


class WriteSegmentedImages(BasePredictionWriter):
    """Postprocesses and writes every predicted image; counts nuclei and failures.

    ``workers`` processes postprocess (0: in this process); ``batch``: images per predicted
    batch, which wait for them without holding up the network.
    """

    def __init__(
        self, finishing: Finishing, workers: int, progress: bool = True, batch: int = 1
    ) -> None:
        super().__init__(write_interval="batch")
        self.finishing = finishing
        self.workers = workers
        self.batch = batch
        self.progress = progress
        #: This process's images written, nuclei found and failures (file -> error).
        self.written: list[str] = []
        self.nuclei = 0
        self.failures: dict[str, str] = {}
        self._pool: PostprocessPool | None = None
        self._bar: Progress | None = None
        self._job: TaskID | None = None

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Start the worker processes and, in the first process, the progress bar."""
        self._pool = PostprocessPool(self.finishing, self.workers, self._done, self.batch)
        self._bar = progress_bar(self.progress and trainer.is_global_zero, show_current=True)
        self._bar.start()
        self._job = self._bar.add_task("Segmenting", total=_images_of(trainer), current="")

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: list[PredictedImage],
        batch_indices: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        """Queue each predicted image for postprocessing; record the unreadable ones."""
        assert self._pool is not None
        for predicted in prediction:
            loaded = predicted.loaded
            if predicted.probabilities is None:
                error = loaded.error or f"{loaded.path}: no prediction"
                self.failures[str(loaded.path)] = error
                save_failure(
                    self.finishing.writer.output_dir, loaded.image_id, str(loaded.path), error
                )
                log.warning("Skipped: %s", error)
                self._advance("")
            else:
                self._pool.submit(loaded, predicted.probabilities)

    def _done(self, record: ImageRecord) -> None:
        """One image written: count it and move the bar."""
        self.written.append(record.image_id)
        self.nuclei += record.count
        name = record.image_id if len(record.image_id) <= 20 else record.image_id[:19] + "…"
        self._advance(f"{name}: {record.count} nuclei")

    def _advance(self, current: str) -> None:
        if self._bar is not None and self._job is not None:
            self._bar.update(self._job, advance=1, current=current)

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Wait for the images still being postprocessed, then stop the workers."""
        if self._pool is not None:
            self._pool.drain()
        self._stop(cancel=False)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        """Stop the workers without waiting for queued images (they are redone next run)."""
        self._stop(cancel=True)

    def _stop(self, cancel: bool) -> None:
        if self._pool is not None:
            self._pool.close(cancel=cancel)
            self._pool = None
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _images_of(trainer: L.Trainer) -> int | None:
    """How many images this process predicts (its share of the data loaders' samplers)."""
    loaders = trainer.predict_dataloaders
    loaders = loaders if isinstance(loaders, list | tuple) else [loaders]
    try:
        return sum(len(loader.sampler) for loader in loaders)
    except TypeError:
        return None
