"""Files a prediction run writes: per-image masks, labels and overlays, and three CSV tables.

Per image ``<id>``: ``<id>_mask.png`` (0/255), ``<id>_labels.tif`` (uint16 instance labels,
0 background) and ``<id>_overlay.png`` (nucleus outlines over the image). For the whole
input: ``nuclei.csv`` (one row per nucleus), ``summary.csv`` (one row per image) and
``submission.csv`` (Kaggle DSB2018 format: ``ImageId,EncodedPixels``, one row per nucleus;
an image without nuclei gets one row with empty ``EncodedPixels``).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np
import tifffile
from PIL import Image
from scipy import ndimage as ndi
from skimage.measure import regionprops_table
from skimage.segmentation import mark_boundaries

from nuclei.data.sources.rle import rle_encode

log = logging.getLogger(__name__)

NUCLEI_COLUMNS = (
    "image",
    "label",
    "area",
    "centroid_row",
    "centroid_col",
    "bbox_min_row",
    "bbox_min_col",
    "bbox_max_row",
    "bbox_max_col",
    "mean_intensity",
    "eccentricity",
)
SUMMARY_COLUMNS = ("image", "file", "height", "width", "nuclei", "covered_fraction", "mean_area")
SUBMISSION_COLUMNS = ("ImageId", "EncodedPixels")
OUTLINE_COLOUR = (1.0, 1.0, 0.0)  # yellow: visible on dark fluorescence and on stained tissue


def overlay_outlines(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The (H, W, 3) uint8 image with each nucleus' outline drawn in yellow."""
    marked = mark_boundaries(image, labels, color=OUTLINE_COLOUR, mode="inner")
    return np.round(marked * 255.0).astype(np.uint8)


def nucleus_rows(image_id: str, labels: np.ndarray, image: np.ndarray) -> list[dict[str, Any]]:
    """One row per nucleus: label, area, centroid, bounding box (max exclusive), mean
    intensity (grey level 0-255 of the image as read) and eccentricity."""
    props = regionprops_table(
        labels,
        intensity_image=image.mean(axis=2),
        properties=("label", "area", "centroid", "bbox", "intensity_mean", "eccentricity"),
    )
    rows = []
    for k in range(len(props["label"])):
        rows.append(
            {
                "image": image_id,
                "label": int(props["label"][k]),
                "area": int(props["area"][k]),
                "centroid_row": round(float(props["centroid-0"][k]), 2),
                "centroid_col": round(float(props["centroid-1"][k]), 2),
                "bbox_min_row": int(props["bbox-0"][k]),
                "bbox_min_col": int(props["bbox-1"][k]),
                "bbox_max_row": int(props["bbox-2"][k]),
                "bbox_max_col": int(props["bbox-3"][k]),
                "mean_intensity": round(float(props["intensity_mean"][k]), 2),
                "eccentricity": round(float(props["eccentricity"][k]), 4),
            }
        )
    return rows


def instance_rles(labels: np.ndarray) -> list[tuple[int, str]]:
    """Kaggle run-length encoding of each nucleus, as (label, rle) in label order.

    Each nucleus is encoded from the full-height columns of its bounding box only (runs
    never leave those columns), then its pixel numbers are shifted to the whole image.
    """
    height = labels.shape[0]
    encoded = []
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        columns = box[1]
        runs = np.array(rle_encode(labels[:, columns] == index).split(), dtype=np.int64)
        runs[0::2] += columns.start * height
        encoded.append((index, " ".join(map(str, runs.tolist()))))
    return encoded


def save_labels(path: Path, labels: np.ndarray) -> None:
    """Write an instance label image as a TIFF: uint16, or uint32 beyond 65535 nuclei."""
    top = int(labels.max()) if labels.size else 0
    dtype = np.uint16 if top <= np.iinfo(np.uint16).max else np.uint32
    if dtype is np.uint32:
        log.warning("%s: %d nuclei do not fit uint16; written as uint32", path, top)
    tifffile.imwrite(path, labels.astype(dtype))


class PredictionWriter:
    """Writes each segmented image's files and streams the CSV tables (use as a context)."""

    def __init__(self, output_dir: str | Path, overlay: bool = True) -> None:
        self.output_dir = Path(output_dir)
        self.overlay = overlay
        self._files: list[IO[str]] = []
        self._tables: dict[str, csv.DictWriter] = {}

    def __enter__(self) -> PredictionWriter:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for name, columns in (
            ("nuclei", NUCLEI_COLUMNS),
            ("summary", SUMMARY_COLUMNS),
            ("submission", SUBMISSION_COLUMNS),
        ):
            handle = (self.output_dir / f"{name}.csv").open("w", newline="")
            self._files.append(handle)
            self._tables[name] = csv.DictWriter(handle, fieldnames=columns)
            self._tables[name].writeheader()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for handle in self._files:
            handle.close()
        self._files.clear()

    def write(self, image_id: str, source: Path, image: np.ndarray, labels: np.ndarray) -> int:
        """Write one image's files and table rows; returns its number of nuclei."""
        if not self._tables:
            raise RuntimeError("PredictionWriter must be used inside a `with` block")
        out = self.output_dir
        Image.fromarray(((labels > 0) * 255).astype(np.uint8)).save(out / f"{image_id}_mask.png")
        save_labels(out / f"{image_id}_labels.tif", labels)
        if self.overlay:
            overlay = overlay_outlines(image, labels)
            Image.fromarray(overlay).save(out / f"{image_id}_overlay.png")

        rows = nucleus_rows(image_id, labels, image)
        self._tables["nuclei"].writerows(rows)
        area = sum(row["area"] for row in rows)
        self._tables["summary"].writerow(
            {
                "image": image_id,
                "file": str(source),
                "height": labels.shape[0],
                "width": labels.shape[1],
                "nuclei": len(rows),
                "covered_fraction": round(area / labels.size, 6),
                "mean_area": round(area / len(rows), 2) if rows else "",
            }
        )
        encoded = instance_rles(labels) or [(0, "")]
        self._tables["submission"].writerows(
            {"ImageId": image_id, "EncodedPixels": rle} for _, rle in encoded
        )
        for handle in self._files:
            handle.flush()
        return len(rows)
