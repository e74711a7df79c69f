"""Segment image files: read, predict, postprocess, write, report.

:func:`segment_images` is the loop behind ``nuclei-predict``, over any
:class:`ImageSegmenter` (the public :class:`nuclei.Segmenter` is one); unreadable or
oversized files are recorded in the report, not fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from nuclei.data.config import IntensityConfig
from nuclei.data.sources.io import IMAGE_SUFFIXES, ImageReadError, read_raw_image
from nuclei.inference.image_guard import refuse_oversized
from nuclei.inference.images import as_network_image
from nuclei.inference.writers import PredictionWriter
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
    intensity: IntensityConfig = field(default_factory=IntensityConfig)
    tta: str = "none"

    def describe(self) -> str:
        """One line for the log: the mode and its sizes."""
        if self.size_mode == "resize":
            how = f"resized to {self.image_size}x{self.image_size} and scaled back"
        else:
            how = f"native resolution, {self.tile} px tiles overlapping by {self.overlap} px"
        norm = self.intensity
        if norm.normalize == "percentile":
            how += f", normalised to the {norm.low:g}-{norm.high:g} percentiles"
        if self.tta != "none":
            how += f", test-time augmentation {self.tta}"
        return f"{how}, batches of {self.batch_size}, on {self.device}"

    @property
    def images_per_batch(self) -> int:
        """Images per forward pass: resized images batch together, a tiled one its windows."""
        return self.batch_size if self.size_mode == "resize" else 1


class ImageSegmenter(Protocol):
    """What :func:`segment_images` needs of a segmenter (``nuclei.Segmenter`` has it)."""

    @property
    def images_per_batch(self) -> int:
        """How many images :meth:`batch_probabilities` should get at once."""
        ...

    def batch_probabilities(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """(C, H, W) float32 probability maps, one per image."""
        ...

    def instances(self, probabilities: np.ndarray) -> np.ndarray:
        """(H, W) instance labels from one image's probability maps."""
        ...


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


def read_for_segmenting(path: Path, max_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """A file's raw pixels (for measuring) and the uint8 RGB copy the network sees.

    The copy is made from the raw pixels by the API's own :func:`as_network_image`, which
    is what :func:`~nuclei.data.sources.io.read_image` makes of the file; raises
    ImageReadError, ImageTooLargeError or another ValueError naming the file.
    """
    refuse_oversized(path, max_pixels)
    raw = read_raw_image(path)
    try:
        return raw, as_network_image(raw)
    except ValueError as exc:
        raise ImageReadError(f"{path}: {exc}") from exc


def segment_images(
    segmenter: ImageSegmenter,
    paths: list[Path],
    writer: PredictionWriter,
    max_pixels: int,
    progress: bool = True,
) -> PredictionReport:
    """Segment and write every image; unreadable or oversized ones are recorded, not fatal.

    Each image goes through ``segmenter`` (the public :class:`nuclei.Segmenter`): its
    probabilities, then its postprocessing. The writer gets the raw pixels (measured in
    ``nuclei.csv``), the network's copy (under the overlay) and the probability maps.
    """
    report = PredictionReport(output_dir=writer.output_dir)
    per_step = segmenter.images_per_batch
    with progress_bar(progress, show_current=True) as bar:
        job = bar.add_task("Segmenting", total=len(paths), current="")
        for first in range(0, len(paths), per_step):
            loaded: list[tuple[Path, np.ndarray, np.ndarray]] = []
            for path in paths[first : first + per_step]:
                try:
                    loaded.append((path, *read_for_segmenting(path, max_pixels)))
                except ValueError as exc:  # ImageReadError, ImageTooLargeError
                    report.failures[str(path)] = str(exc)
                    log.warning("Skipped: %s", exc)
                    bar.advance(job)
            if not loaded:
                continue
            maps = segmenter.batch_probabilities([image for _, _, image in loaded])
            for (path, raw, image), probabilities in zip(loaded, maps, strict=True):
                labels = segmenter.instances(probabilities)
                count = writer.write(
                    path.stem, path, image, labels, raw=raw, probabilities=probabilities
                )
                report.images.append(path.stem)
                report.nuclei += count
                name = path.stem if len(path.stem) <= 20 else path.stem[:19] + "…"
                bar.update(job, advance=1, current=f"{name}: {count} nuclei")
    return report
