"""Segment new images with a trained checkpoint: ``nuclei-predict``.

``nuclei-predict ckpt_path=PATH input=DIR_OR_FILE output=DIR`` predicts every image the
way the model was trained (resized to its ``image_size``, or tiled at native resolution for
a model trained on crops), turns the probabilities into nuclei and writes, per image,
``<id>_mask.png``, ``<id>_labels.tif`` and ``<id>_overlay.png`` (with
``save_probabilities=true`` also ``<id>_probabilities.tif``), and for the whole input
``nuclei.csv``, ``summary.csv``, ``submission.csv`` and ``predict_args.json`` (checkpoint and
its SHA-256, settings, versions; see ``conf/predict.yaml``), with the log ``predict.log`` and
each run's config in ``.nuclei-predict/runs/``. An output overlapping the input, or in use by
another prediction, is refused before the model loads. It runs through a Lightning
Trainer (:func:`nuclei.api.file_prediction.segment_folder`, also behind
:meth:`nuclei.Segmenter.segment_files`): ``trainer=ddp trainer.devices=4`` shares a folder out
among four GPUs, postprocessing runs in worker processes beside the network, and a run
started again on the same output skips the images already complete (``overwrite=true``
redoes them).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, ListConfig
from rich.table import Table

from nuclei.api.file_prediction import (
    PREDICT_TRAINER_OPTIONS,
    prediction_folder,
    segment_held_folder,
)
from nuclei.api.segmenter import Segmenter
from nuclei.cli.app import App, command, user_errors
from nuclei.cli.console import print_table
from nuclei.inference.output_files import ImageFileWriter
from nuclei.inference.probabilities import trainer_device
from nuclei.inference.segment import FileOptions, PredictionReport, TrainerFactory
from nuclei.runs.run_dir import RunDir
from nuclei.runtime import default_decode_workers, default_postprocess_workers

log = logging.getLogger(__name__)

APP = App(name="nuclei-predict", config_name="predict")


def segmenter_of(cfg: DictConfig) -> Segmenter:
    """The :class:`nuclei.Segmenter` of ``cfg.ckpt_path`` with the command's options."""
    spec = cfg.ckpt_path
    return Segmenter.from_checkpoint(
        [str(p) for p in spec] if isinstance(spec, ListConfig) else str(spec),
        device=str(cfg.device),
        trust_checkpoint=bool(cfg.trust_checkpoint),
        postprocess=cfg.get("postprocess"),
        tuned_postprocess=bool(cfg.get("tuned_postprocess", True)),
        batch_size=int(cfg.batch_size),
        tile=cfg.tile,
        overlap=cfg.overlap,
        size_mode=cfg.size_mode,
        image_size=cfg.image_size,
        tta=str(cfg.get("tta") or "none"),
        memory_budget=gib_to_bytes(cfg.get("memory_budget_gib")),
    )


def gib_to_bytes(gib: float | None) -> float | None:
    """A memory budget in GiB as bytes (None stays None: the device's default)."""
    if gib is None:
        return None
    if gib <= 0:
        raise ValueError(f"memory_budget_gib must be > 0, got {gib}")
    return float(gib) * 2**30


def output_directory(cfg: DictConfig) -> Path:
    """``cfg.output``, or this run's Hydra directory when it is null."""
    if cfg.get("output"):
        return Path(cfg.output).expanduser()
    return RunDir.current(cfg).path


def file_writer_of(cfg: DictConfig) -> ImageFileWriter:
    """The writer of the files ``cfg`` asks for, into :func:`output_directory`."""
    properties = cfg.get("properties")
    return ImageFileWriter(
        output_directory(cfg),
        overlay=bool(cfg.overlay),
        pixel_size_um=cfg.get("pixel_size_um"),
        properties=None if properties is None else tuple(properties),
        save_probabilities=bool(cfg.get("save_probabilities", False)),
        roi_zip=bool(cfg.get("roi_zip", False)),
    )


def file_options_of(cfg: DictConfig) -> FileOptions:
    """Pixel limit, overwrite, worker processes and progress bar of ``cfg``."""
    return FileOptions(
        max_pixels=int(cfg.max_pixels),
        overwrite=bool(cfg.get("overwrite", False)),
        decode_workers=workers_of(cfg.get("decode_workers", "auto"), default_decode_workers),
        postprocess_workers=workers_of(
            cfg.get("postprocess_workers", "auto"), default_postprocess_workers
        ),
        progress=bool(cfg.progress_bar),
    )


def workers_of(value: Any, default: Any) -> int:
    """A worker count option: an integer >= 0, or ``auto`` (``default()``)."""
    if value in (None, "auto"):
        return int(default())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"a worker count must be an integer >= 0 or auto, got {value!r}")
    return value


def print_report(report: PredictionReport, seconds: float) -> None:
    """A short table: images segmented, nuclei found, failures, where the files are."""
    table = Table(title="nuclei-predict", show_header=False)
    table.add_column("")
    table.add_column("", justify="right")
    n = len(report.images)
    table.add_row("images segmented", str(n))
    table.add_row("nuclei found", str(report.nuclei))
    table.add_row("nuclei per image", f"{report.nuclei / n:.1f}" if n else "-")
    table.add_row("failed images", str(len(report.failures)))
    if report.skipped:
        table.add_row("complete before (skipped)", str(report.skipped))
    table.add_row("time", f"{seconds:.1f} s")
    table.add_row("output", str(report.output_dir))
    print_table(table)  # whole, also in a file or a narrow terminal


def trainer_factory(cfg: DictConfig, device: torch.device, output_dir: Path) -> TrainerFactory:
    """Trainers of ``cfg.trainer`` (trainer=ddp / ddp_cpu split the images among processes),
    on ``device``'s accelerator, one device unless the trainer preset says how many."""
    kwargs: dict[str, Any] = {**PREDICT_TRAINER_OPTIONS, "default_root_dir": str(output_dir)}
    if str(cfg.device) != "auto":
        kwargs.update(trainer_device(device))
        if cfg.trainer.devices not in ("auto", None, 1) and device.type != "cuda":
            kwargs["devices"] = cfg.trainer.devices  # e.g. device=cpu trainer=ddp_cpu
    elif cfg.trainer.devices in ("auto", None):
        kwargs["devices"] = 1  # every visible GPU only when asked: trainer=ddp

    def make(callbacks: list[Callback]) -> L.Trainer:
        return instantiate(cfg.trainer, callbacks=callbacks, **kwargs)

    return make


def predict(cfg: DictConfig) -> PredictionReport:
    """Segment ``cfg.input`` with the checkpoint ``cfg.ckpt_path`` into ``cfg.output``.

    An output overlapping the input, or held by another prediction, is refused before the
    model loads."""
    started = time.perf_counter()
    with prediction_folder(cfg.input, output_directory(cfg)):
        segmenter = segmenter_of(cfg)
        writer = file_writer_of(cfg)
        report = segment_held_folder(
            segmenter,
            cfg.input,
            writer,
            file_options_of(cfg),
            trainer_factory(cfg, segmenter.settings.device, writer.output_dir),
        )
    if rank_zero_only.rank == 0:
        print_report(report, time.perf_counter() - started)
    return report


@hydra.main(version_base="1.3", config_path="pkg://nuclei.conf", config_name="predict")
def _hydra_main(cfg: DictConfig) -> None:
    with user_errors(APP.name, ValueError):  # a bad option value, an ambiguous input folder
        report = predict(cfg)
    if report.failures:
        lines = "\n".join(f"  {why}" for why in report.failures.values())  # names the file
        log.error("%d image(s) could not be segmented:\n%s", len(report.failures), lines)
        raise SystemExit(1)


main = command(APP, _hydra_main, "exits non-zero when an image failed (after all others are done).")


if __name__ == "__main__":
    main()
