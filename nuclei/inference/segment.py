"""Segment image files through a Lightning Trainer: read, predict, postprocess, write, report.

:func:`segment_files` is ``nuclei-predict`` and :meth:`nuclei.Segmenter.segment_files`:
DataLoader workers decode the files (:mod:`~nuclei.inference.predict_data`),
``trainer.predict`` runs the network on each process's share
(:class:`~nuclei.inference.map_module.ProbabilityMaps`), and the prediction writer
(:class:`~nuclei.inference.write_callback.WriteSegmentedImages`) postprocesses and writes every
image in worker processes. Unreadable or oversized files are recorded, not fatal. Images an
earlier run into the same output completed are skipped (see
:mod:`nuclei.inference.image_records`), and the tables are assembled from the records.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import Callback
from torch import nn

from nuclei.inference.image_records import (
    ImageRecord,
    complete_images,
    forget_images,
    load_failure,
    load_record,
    remove_leftovers,
    save_share,
)
from nuclei.inference.map_module import ProbabilityMaps
from nuclei.inference.postprocess_pool import Finishing
from nuclei.inference.predict_data import ImageFilesDataModule
from nuclei.inference.settings import PredictionSettings
from nuclei.inference.write_callback import WriteSegmentedImages
from nuclei.inference.writers import write_tables

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
    images were made with the same settings (:func:`~nuclei.inference.image_records.
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
        trainer.predict(ProbabilityMaps(net, settings), datamodule=data, return_predictions=False)
        _record_share(output_dir, trainer, writer.written)
        trainer.strategy.barrier()  # every process's images written
        first_process = trainer.is_global_zero
    else:  # no Trainer, no DDP processes started: under srun every task gets here
        first_process = rank_zero_only.rank == 0
    properties = finishing.writer.properties
    return _report(output_dir, paths, skipped, write=first_process, properties=properties)


def _record_share(output_dir: Path, trainer: L.Trainer, written: list[str]) -> None:
    """Log and record (:func:`~nuclei.inference.image_records.save_share`) the images this
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
