"""Segment new images with a trained checkpoint: ``nuclei-predict``.

``nuclei-predict ckpt_path=PATH input=DIR_OR_FILE output=DIR`` predicts every image the
way the model was trained (resized to its ``image_size``, or tiled at native resolution for
a model trained on crops), turns the probabilities into nuclei and writes, per image,
``<id>_mask.png``, ``<id>_labels.tif`` and ``<id>_overlay.png`` (with
``save_probabilities=true`` also ``<id>_probabilities.tif``), and for the whole input
``nuclei.csv``, ``summary.csv``, ``submission.csv`` and ``predict_args.json`` (checkpoint and
its SHA-256, settings, versions; see ``conf/predict.yaml``). Each image goes through
:class:`nuclei.Segmenter`, the object a notebook uses.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig, ListConfig
from rich.table import Table

from nuclei.api.predict_args import write_predict_args
from nuclei.api.segmenter import Segmenter
from nuclei.cli.app import App, command, user_errors
from nuclei.cli.console import print_table
from nuclei.inference.image_guard import pillow_pixel_limit
from nuclei.inference.segment import PredictionReport, find_images, segment_images
from nuclei.inference.writers import PredictionWriter
from nuclei.runs.run_dir import RunDir

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
        tile=int(cfg.tile),
        overlap=int(cfg.overlap),
        size_mode=cfg.size_mode,
        image_size=cfg.image_size,
        tta=str(cfg.get("tta") or "none"),
    )


def output_directory(cfg: DictConfig) -> Path:
    """``cfg.output``, or this run's Hydra directory when it is null."""
    if cfg.get("output"):
        return Path(cfg.output).expanduser()
    return RunDir.current(cfg).path


def writer_of(cfg: DictConfig) -> PredictionWriter:
    """The writer of the files ``cfg`` asks for, into :func:`output_directory`."""
    properties = cfg.get("properties")
    return PredictionWriter(
        output_directory(cfg),
        overlay=bool(cfg.overlay),
        pixel_size_um=cfg.get("pixel_size_um"),
        properties=None if properties is None else list(properties),
        save_probabilities=bool(cfg.get("save_probabilities", False)),
        roi_zip=bool(cfg.get("roi_zip", False)),
    )


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
    print_table(table)  # whole, also in a file or a narrow terminal


def predict(cfg: DictConfig) -> PredictionReport:
    """Segment ``cfg.input`` with the checkpoint ``cfg.ckpt_path`` into ``cfg.output``."""
    started = time.perf_counter()
    segmenter = segmenter_of(cfg)
    paths = find_images(cfg.input)
    log.info(
        "Segmenting %d image(s) from %s: %s", len(paths), cfg.input, segmenter.settings.describe()
    )
    log.info("Target %s; postprocessing %s", segmenter.target, segmenter.postprocess)
    with (
        writer_of(cfg) as writer,
        pillow_pixel_limit(int(cfg.max_pixels)),
    ):
        write_predict_args(writer.output_dir, segmenter, input=str(cfg.input))
        report = segment_images(
            segmenter,
            paths,
            writer,
            int(cfg.max_pixels),
            cfg.progress_bar,
        )
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
