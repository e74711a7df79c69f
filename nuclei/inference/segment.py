"""Segment image files with a network: read, predict, postprocess, write, report.

:func:`segment_images` is the loop behind ``nuclei-predict``; unreadable or oversized files
are recorded in the report, not fatal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from nuclei.data.sources.io import IMAGE_SUFFIXES, ImageReadError, read_image
from nuclei.inference.image_guard import ImageTooLargeError, refuse_oversized
from nuclei.inference.maps import predict_maps
from nuclei.inference.writers import PredictionWriter
from nuclei.instances.postprocess import PostprocessConfig, instances_from_maps
from nuclei.progress import progress_bar

log = logging.getLogger(__name__)


@dataclass
class PredictionSettings:
    """How images go through the network (see :func:`nuclei.inference.maps.predict_maps`)."""

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
    with progress_bar(progress, show_current=True) as bar:
        job = bar.add_task("Segmenting", total=len(paths), current="")
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
