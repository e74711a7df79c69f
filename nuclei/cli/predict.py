"""Segment new images with a trained checkpoint: ``nuclei-predict``.

``nuclei-predict ckpt_path=PATH input=DIR_OR_FILE output=DIR`` predicts every image the
way the model was trained (resized to its ``image_size``, or tiled at native resolution for
a model trained on crops), turns the probabilities into nuclei and writes, per image,
``<id>_mask.png``, ``<id>_labels.tif`` and ``<id>_overlay.png``, and for the whole input
``nuclei.csv``, ``summary.csv`` and ``submission.csv`` (see ``conf/predict.yaml``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from nuclei.cli.overrides import translate_command_line
from nuclei.data.config import SIZE_MODES
from nuclei.inference.device import resolve_device
from nuclei.inference.image_guard import pillow_pixel_limit
from nuclei.inference.segment import (
    PredictionReport,
    PredictionSettings,
    find_images,
    segment_images,
)
from nuclei.inference.writers import PredictionWriter
from nuclei.runs.checkpoint import CheckpointError, load_run, postprocess_of, restore_task
from nuclei.runs.run_dir import RunDir

log = logging.getLogger(__name__)


def prediction_settings(stored_data: DictConfig, cfg: DictConfig) -> PredictionSettings:
    """The size handling of the training run (``data.size``, default resize), or ``cfg``'s."""
    stored_size = stored_data.get("size") or {}
    size_mode = cfg.size_mode or stored_size.get("mode") or "resize"
    if size_mode not in SIZE_MODES:
        raise ValueError(f"size_mode must be one of {SIZE_MODES}, got {size_mode!r}")
    image_size = cfg.image_size or stored_size.get("image_size")
    if size_mode == "resize" and not image_size:
        raise ValueError("size_mode=resize needs image_size (not in the stored config)")
    return PredictionSettings(
        size_mode=size_mode,
        image_size=int(image_size or 0),
        tile=int(cfg.tile),
        overlap=int(cfg.overlap),
        batch_size=int(cfg.batch_size),
        device=resolve_device(str(cfg.device)),
    )


def output_directory(cfg: DictConfig) -> Path:
    """``cfg.output``, or this run's Hydra directory when it is null."""
    if cfg.get("output"):
        return Path(cfg.output).expanduser()
    return RunDir.current(cfg).path


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
    table.add_row("time", f"{seconds:.1f} s")
    table.add_row("output", str(report.output_dir))
    Console().print(table)


def predict(cfg: DictConfig) -> PredictionReport:
    """Segment ``cfg.input`` with the checkpoint ``cfg.ckpt_path`` into ``cfg.output``."""
    started = time.perf_counter()
    run = load_run(cfg.ckpt_path, trust=cfg.trust_checkpoint)
    postprocess = postprocess_of(
        run, cfg.get("postprocess"), use_tuned=cfg.get("tuned_postprocess", True)
    )
    settings = prediction_settings(run.config.data, cfg)
    paths = find_images(cfg.input)
    net = restore_task(run).to(settings.device)
    log.info("Segmenting %d image(s) from %s: %s", len(paths), cfg.input, settings.describe())
    log.info("Target %s; postprocessing %s", run.target, postprocess)
    with (
        PredictionWriter(output_directory(cfg), overlay=cfg.overlay) as writer,
        pillow_pixel_limit(int(cfg.max_pixels)),
    ):
        report = segment_images(
            net,
            paths,
            writer,
            settings,
            postprocess,
            int(cfg.max_pixels),
            cfg.progress_bar,
            target=run.target,
        )
    print_report(report, time.perf_counter() - started)
    return report


@hydra.main(version_base="1.3", config_path="pkg://nuclei.conf", config_name="predict")
def _hydra_main(cfg: DictConfig) -> None:
    try:
        report = predict(cfg)
    except (CheckpointError, ValueError, FileNotFoundError) as exc:
        log.error("nuclei-predict: %s", exc)
        raise SystemExit(2) from None
    if report.failures:
        lines = "\n".join(f"  {why}" for why in report.failures.values())  # names the file
        log.error("%d image(s) could not be segmented:\n%s", len(report.failures), lines)
        raise SystemExit(1)


def main(cfg: DictConfig | None = None) -> None:
    """``nuclei-predict``: exits non-zero when an image failed (after all others are done).

    A composed ``cfg`` is run as it is, without reading the command line.
    """
    if cfg is not None:
        _hydra_main(cfg)
        return
    translate_command_line()
    _hydra_main()


if __name__ == "__main__":
    main()
