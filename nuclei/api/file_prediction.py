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

from nuclei.api.predict_args import PREDICT_ARGS_FILE, predict_args
from nuclei.inference.image_files import find_images
from nuclei.inference.postprocess_pool import Finishing
from nuclei.inference.segment import FileOptions, PredictionReport, TrainerFactory, segment_files
from nuclei.inference.writers import ImageFileWriter
from nuclei.runs.atomic import atomic_write_json

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


def settings_record(args: dict[str, Any], writer: ImageFileWriter) -> dict[str, Any]:
    """What decides a prediction's files, from its ``predict_args`` record: checkpoint digests,
    sizes, postprocessing, file options (not the input, device, batch size or versions)."""
    record = {k: v for k, v in args.items() if k not in ("packages", "nuclei_version", "input")}
    record["settings"] = {
        k: v for k, v in args["settings"].items() if k not in ("device", "batch_size")
    }
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
    args = predict_args(segmenter, input=str(source))  # hashes each checkpoint once
    if rank_zero_only.rank == 0:
        atomic_write_json(writer.output_dir / PREDICT_ARGS_FILE, args)
    return segment_files(
        make_trainer or single_device_trainer(segmenter.settings.device),
        segmenter.net,
        segmenter.settings,
        Finishing(segmenter.postprocess, segmenter.target, writer),
        paths,
        options,
        settings_record(args, writer),
    )
