"""Segment image files with a :class:`nuclei.Segmenter` through a Lightning Trainer.

One path for ``nuclei-predict`` and :meth:`nuclei.Segmenter.segment_files`:
:func:`segment_folder` refuses an output that overlaps the input and holds the output folder
(:func:`prediction_folder`), finds the images, checks that the folder's earlier images were
made with the same settings, then records what produces the folder (``predict_args.json``) and
runs :func:`nuclei.inference.segment.segment_files` with a Trainer on the segmenter's device,
or the one a caller builds (``nuclei-predict trainer=ddp``).

``predict_args.json`` records what produced a prediction folder (checkpoint, settings,
versions): :func:`predict_args`, :func:`write_predict_args`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import Callback

import nuclei
from nuclei.files import atomic_write_json
from nuclei.inference.image_files import find_images
from nuclei.inference.output_files import ImageFileWriter
from nuclei.inference.output_folder import (
    check_settings,
    output_lock,
    refuse_overlap,
    save_settings,
)
from nuclei.inference.postprocess_pool import Finishing
from nuclei.inference.probabilities import trainer_device
from nuclei.inference.segment import FileOptions, PredictionReport, TrainerFactory, segment_files
from nuclei.runs.provenance import package_versions

if TYPE_CHECKING:
    from nuclei.api.segmenter import Segmenter


#: The record's file name, in the prediction's output folder.
PREDICT_ARGS_FILE = "predict_args.json"


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """The SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def predict_args(segmenter: Segmenter, **extra: Any) -> dict[str, Any]:
    """The record: the segmenter's settings, its checkpoint's path and SHA-256 (an
    ensemble's: each member's), versions."""
    record = segmenter.describe()
    checkpoint = segmenter.checkpoint_path
    record["checkpoint"] = {
        "path": str(checkpoint.resolve()) if checkpoint else None,
        "sha256": file_sha256(checkpoint) if checkpoint else None,
    }
    if segmenter.ensemble:
        record["ensemble"] = [
            {"path": str(path.resolve()), "sha256": file_sha256(path)}
            for path in segmenter.ensemble
        ]
    record["nuclei_version"] = nuclei.__version__
    record["packages"] = package_versions()
    return {**record, **extra}


def folder_predict_args(
    segmenter: Segmenter, source: str | Path, writer: ImageFileWriter, max_pixels: int
) -> dict[str, Any]:
    """:func:`predict_args` of a prediction of ``source`` by ``writer``: the input and output
    as absolute paths, the file options (overlay, calibration, measurements, extra files)
    and the pixel limit beyond which an image is refused."""
    files = {k: v for k, v in asdict(writer).items() if k != "output_dir"}
    return predict_args(
        segmenter,
        input=str(Path(source).expanduser().resolve()),
        output=str(writer.output_dir.expanduser().resolve()),
        files=files,
        max_pixels=max_pixels,
    )


def write_predict_args(output_dir: str | Path, segmenter: Segmenter, **extra: Any) -> Path:
    """Write :func:`predict_args` (plus ``extra`` entries) to ``output_dir/predict_args.json``."""
    return atomic_write_json(Path(output_dir) / PREDICT_ARGS_FILE, predict_args(segmenter, **extra))


log = logging.getLogger(__name__)

#: Quiet Trainer settings for prediction: no logger, checkpoints, summary or Lightning bar.
PREDICT_TRAINER_OPTIONS: dict[str, Any] = {
    "logger": False,
    "enable_checkpointing": False,
    "enable_model_summary": False,
    "enable_progress_bar": False,
}


def single_device_trainer(device: torch.device) -> TrainerFactory:
    """A factory of quiet one-device Trainers on ``device``."""

    def make(callbacks: list[Callback]) -> L.Trainer:
        return L.Trainer(callbacks=callbacks, **trainer_device(device), **PREDICT_TRAINER_OPTIONS)

    return make


def settings_record(args: dict[str, Any]) -> dict[str, Any]:
    """What decides a prediction's files, from its ``predict_args`` record: checkpoint digests,
    sizes, postprocessing, file options (not the paths, device, batch size, pixel limit or
    versions)."""
    left_out = ("packages", "nuclei_version", "input", "output", "max_pixels")
    record = {k: v for k, v in args.items() if k not in left_out}
    record["settings"] = {
        k: v for k, v in args["settings"].items() if k not in ("device", "batch_size")
    }
    return record


@contextmanager
def prediction_folder(source: str | Path, output: str | Path) -> Iterator[None]:
    """Refuse an ``output`` that overlaps ``source``, then hold it for the block (the first
    process only: under DDP the others work for it); both before anything is written."""
    refuse_overlap(source, output)
    if rank_zero_only.rank != 0:
        yield
        return
    with output_lock(output):
        yield


def segment_folder(
    segmenter: Segmenter,
    source: str | Path,
    writer: ImageFileWriter,
    options: FileOptions,
    make_trainer: TrainerFactory | None = None,
) -> PredictionReport:
    """Segment the image file or folder ``source`` into ``writer.output_dir``.

    The folder is checked and held (:func:`prediction_folder`) for
    :func:`segment_held_folder`.
    """
    with prediction_folder(source, writer.output_dir):
        return segment_held_folder(segmenter, source, writer, options, make_trainer)


def segment_held_folder(
    segmenter: Segmenter,
    source: str | Path,
    writer: ImageFileWriter,
    options: FileOptions,
    make_trainer: TrainerFactory | None = None,
) -> PredictionReport:
    """:func:`segment_folder` in a folder :func:`prediction_folder` holds.

    Continuing a folder made with other settings is refused (nothing written) unless
    ``options.overwrite``; once accepted, the settings and ``predict_args.json`` are written
    (first process only), then every image's files and the tables. Images complete from an
    earlier run into the same folder are skipped unless ``options.overwrite``.
    ``make_trainer`` defaults to one device, the segmenter's.
    """
    paths = find_images(source)
    log.info(
        "Segmenting %d image(s) from %s: %s", len(paths), source, segmenter.settings.describe()
    )
    log.info("Target %s; postprocessing %s", segmenter.target, segmenter.postprocess)
    args = folder_predict_args(segmenter, source, writer, options.max_pixels)  # hashes once
    settings = settings_record(args)
    check_settings(writer.output_dir, settings, options.overwrite)
    if rank_zero_only.rank == 0:
        save_settings(writer.output_dir, settings)
        atomic_write_json(writer.output_dir / PREDICT_ARGS_FILE, args)
    return segment_files(
        make_trainer or single_device_trainer(segmenter.settings.device),
        segmenter.net,
        segmenter.settings,
        Finishing(segmenter.postprocess, segmenter.target, writer),
        paths,
        options,
    )
