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
from dataclasses import dataclass, field
from pathlib import Path

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from nuclei.data.sources.io import IMAGE_SUFFIXES, ImageReadError, read_image
from nuclei.inference.image_guard import ImageTooLargeError, pillow_pixel_limit, refuse_oversized
from nuclei.inference.tiling import SIZE_MODES, predict_maps
from nuclei.inference.writers import PredictionWriter
from nuclei.instances.postprocess import PostprocessConfig, instances_from_maps
from nuclei.runs.checkpoint import CheckpointError, load_run, postprocess_of, restore_task

log = logging.getLogger(__name__)


@dataclass
class PredictionSettings:
    """How images go through the network (see :func:`nuclei.inference.predict_maps`)."""

    size_mode: str
    image_size: int
    tile: int
    overlap: int
    batch_size: int
    device: torch.device

    def describe(self) -> str:
        """One line for the log: the mode and its sizes."""
        if self.size_mode == "resize":
            how = f"resized to {self.image_size}x{self.image_size} and scaled back"
        else:
            how = f"native resolution, {self.tile} px tiles overlapping by {self.overlap} px"
        return f"{how}, batches of {self.batch_size}, on {self.device}"


@dataclass
class PredictionReport:
    """What a prediction run did: images segmented, nuclei found, files that failed."""

    output_dir: Path
    images: list[str] = field(default_factory=list)
    nuclei: int = 0
    failures: dict[str, str] = field(default_factory=dict)


def find_images(path: str | Path) -> list[Path]:
    """The images to segment: a file, or a folder's image files (Kaggle ``<id>/images/`` too).

    Hidden files and files without an image suffix are ignored; two images with the same
    id (file stem) are refused, since their outputs would collide.
    """
    path = Path(path).expanduser()
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: input file or folder not found")

    def images_in(folder: Path) -> list[Path]:
        return [
            p
            for p in folder.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
        ]

    found = images_in(path)
    for sub in sorted(d for d in path.iterdir() if d.is_dir() and (d / "images").is_dir()):
        found += images_in(sub / "images")
    if not found:
        raise FileNotFoundError(
            f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in it or in <id>/images/ below it"
        )
    by_id: dict[str, list[Path]] = {}
    for image in found:
        by_id.setdefault(image.stem, []).append(image)
    clashes = {k: v for k, v in by_id.items() if len(v) > 1}
    if clashes:
        listed = "; ".join(", ".join(str(p) for p in v) for v in list(clashes.values())[:5])
        raise ValueError(f"{len(clashes)} image id(s) occur twice (same file stem): {listed}")
    return sorted(found, key=lambda p: p.stem)


def resolve_device(name: str) -> torch.device:
    """``auto``: the GPU when there is one, else the CPU; otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def prediction_settings(stored_data: DictConfig, cfg: DictConfig) -> PredictionSettings:
    """The size handling of the training run (``data.size_mode``, default resize), or ``cfg``'s."""
    size_mode = cfg.size_mode or stored_data.get("size_mode") or "resize"
    if size_mode not in SIZE_MODES:
        raise ValueError(f"size_mode must be one of {SIZE_MODES}, got {size_mode!r}")
    image_size = cfg.image_size or stored_data.get("image_size")
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
    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    raise ValueError("output must name a folder")


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]Segmenting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[current]}"),
        TimeRemainingColumn(),
        disable=not enabled,
    )


def segment_images(
    net: torch.nn.Module,
    paths: list[Path],
    writer: PredictionWriter,
    settings: PredictionSettings,
    postprocess: PostprocessConfig,
    max_pixels: int,
    progress: bool = True,
    target: str = "binary",
) -> PredictionReport:
    """Predict, postprocess and write every image; unreadable ones are recorded, not fatal.

    ``target`` is what the network was trained on: for ``border`` (or ``distance``) its
    second channel seeds the marker watershed (``postprocess.split=auto`` or ``markers``).
    """
    report = PredictionReport(output_dir=writer.output_dir)
    # Resized images batch together; a tiled image batches its own windows.
    per_step = settings.batch_size if settings.size_mode == "resize" else 1
    with _progress(progress) as bar:
        job = bar.add_task("segment", total=len(paths), current="")
        for first in range(0, len(paths), per_step):
            loaded: list[tuple[Path, np.ndarray]] = []
            for path in paths[first : first + per_step]:
                try:
                    refuse_oversized(path, max_pixels)
                    loaded.append((path, read_image(path)))
                except (ImageReadError, ImageTooLargeError) as exc:
                    report.failures[str(path)] = str(exc)
                    log.warning("Skipped: %s", exc)
                    bar.advance(job)
            if not loaded:
                continue
            probs = predict_maps(
                net,
                [image for _, image in loaded],
                size_mode=settings.size_mode,
                image_size=settings.image_size,
                tile=settings.tile,
                overlap=settings.overlap,
                batch_size=settings.batch_size,
                device=settings.device,
            )
            for (path, image), prob in zip(loaded, probs, strict=True):
                labels = instances_from_maps(prob, postprocess, target)
                count = writer.write(path.stem, path, image, labels)
                report.images.append(path.stem)
                report.nuclei += count
                name = path.stem if len(path.stem) <= 20 else path.stem[:19] + "…"
                bar.update(job, advance=1, current=f"{name}: {count} nuclei")
    return report


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
def main(cfg: DictConfig) -> None:
    """Hydra entry point; exits non-zero when an image failed (after all others are done)."""
    try:
        report = predict(cfg)
    except (CheckpointError, ValueError, FileNotFoundError) as exc:
        log.error("nuclei-predict: %s", exc)
        raise SystemExit(2) from None
    if report.failures:
        lines = "\n".join(f"  {why}" for why in report.failures.values())  # names the file
        log.error("%d image(s) could not be segmented:\n%s", len(report.failures), lines)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
