"""Segment image files with a :class:`nuclei.Segmenter` through a Lightning Trainer.

One path for ``nuclei-predict`` and :meth:`nuclei.Segmenter.segment_files`:
:func:`segment_folder` finds the images, records what produced the folder
(``predict_args.json``) and runs :func:`nuclei.inference.segment.segment_files` with a Trainer
on the segmenter's device, or the one a caller builds (``nuclei-predict trainer=ddp``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import Callback

from nuclei.api.predict_args import predict_args, write_predict_args
from nuclei.inference.image_files import find_images
from nuclei.inference.postprocess_pool import Finishing
from nuclei.inference.segment import FileOptions, PredictionReport, TrainerFactory, segment_files
from nuclei.inference.writers import ImageFileWriter

if TYPE_CHECKING:
    from nuclei.api.segmenter import Segmenter

log = logging.getLogger(__name__)

#: Quiet Trainer settings for prediction: no logger, checkpoints, summary or Lightning bar.
PREDICT_TRAINER_OPTIONS: dict[str, Any] = {
    "logger": False,
    "enable_checkpointing": False,
    "enable_model_summary": False,
    "enable_progress_bar": False,
}


def accelerator_of(device: torch.device) -> dict[str, Any]:
    """Trainer ``accelerator``/``devices`` that run on ``device`` (one device)."""
    if device.type == "cuda":
        return {"accelerator": "gpu", "devices": [device.index or 0]}
    return {"accelerator": device.type, "devices": 1}


def single_device_trainer(device: torch.device) -> TrainerFactory:
    """A factory of quiet one-device Trainers on ``device``."""

    def make(callbacks: list[Callback]) -> L.Trainer:
        return L.Trainer(callbacks=callbacks, **accelerator_of(device), **PREDICT_TRAINER_OPTIONS)

    return make


def settings_record(segmenter: Segmenter, writer: ImageFileWriter) -> dict[str, Any]:
    """What decides a prediction's files: checkpoint digests, sizes, postprocessing, file
    options (not the device, batch size or package versions)."""
    record = predict_args(segmenter)
    for key in ("packages", "nuclei_version"):
        record.pop(key, None)
    for key in ("device", "batch_size"):
        record["settings"].pop(key, None)
    files = asdict(writer)
    files.pop("output_dir")
    return {**record, "files": files}


def segment_folder(
    segmenter: Segmenter,
    source: str | Path,
    writer: ImageFileWriter,
    options: FileOptions,
    make_trainer: TrainerFactory | None = None,
) -> PredictionReport:
    """Segment the image file or folder ``source`` into ``writer.output_dir``.

    Writes ``predict_args.json`` (first process only), then every image's files and the
    tables; images complete from an earlier run into the same folder are skipped unless
    ``options.overwrite``. ``make_trainer`` defaults to one device, the segmenter's.
    """
    paths = find_images(source)
    log.info(
        "Segmenting %d image(s) from %s: %s", len(paths), source, segmenter.settings.describe()
    )
    log.info("Target %s; postprocessing %s", segmenter.target, segmenter.postprocess)
    writer.output_dir.mkdir(parents=True, exist_ok=True)
    if rank_zero_only.rank == 0:
        write_predict_args(writer.output_dir, segmenter, input=str(source))
    return segment_files(
        make_trainer or single_device_trainer(segmenter.settings.device),
        segmenter.net,
        segmenter.settings,
        Finishing(segmenter.postprocess, segmenter.target, writer),
        paths,
        options,
        settings_record(segmenter, writer),
    )
