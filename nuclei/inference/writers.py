"""Files a prediction run writes: per-image masks, labels and overlays, and three CSV tables.

Per image ``<id>``: ``<id>_mask.png`` (0/255), ``<id>_labels.tif`` (uint32 instance labels,
0 background, ImageJ metadata), ``<id>_overlay.png`` (nucleus outlines over the image) and,
when asked for, ``<id>_probabilities.tif`` (float32 (C, H, W)) and ``<id>_rois.zip`` (ImageJ
ROI set of the outlines). For the whole input: ``nuclei.csv`` (one row per nucleus, measured
by :func:`nuclei.inference.measure.measure_nuclei` on the file's raw pixels),
``summary.csv`` (one row per image) and ``submission.csv`` (Kaggle DSB2018 format:
``ImageId,EncodedPixels``, one row per nucleus; an image without nuclei gets one row with
empty ``EncodedPixels``). Every file is written atomically (see
:mod:`nuclei.inference.output_files`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from skimage.segmentation import mark_boundaries

from nuclei.data.sources.io import read_raw_image
from nuclei.data.sources.rle import rle_encode
from nuclei.inference.measure import measure_nuclei, select_properties
from nuclei.inference.output_files import (
    save_labels,
    save_png,
    save_probabilities,
    save_roi_zip,
    save_table,
)

SUMMARY_COLUMNS = ("image", "file", "height", "width", "nuclei", "covered_fraction", "mean_area")
SUBMISSION_COLUMNS = ("ImageId", "EncodedPixels")
OUTLINE_COLOUR = (1.0, 1.0, 0.0)  # yellow: visible on dark fluorescence and on stained tissue


def overlay_outlines(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The (H, W, 3) uint8 image with each nucleus' outline drawn in yellow."""
    marked = mark_boundaries(image, labels, color=OUTLINE_COLOUR, mode="inner")
    return np.round(marked * 255.0).astype(np.uint8)


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


class PredictionWriter:
    """Writes each segmented image's files and gathers the CSV tables (use as a context).

    ``pixel_size_um`` adds µm columns to ``nuclei.csv`` and calibrates the TIFFs;
    ``properties`` chooses the measurements (``measure_nuclei``'s names);
    ``save_probabilities`` writes ``<id>_probabilities.tif`` for images given their maps;
    ``roi_zip`` writes ``<id>_rois.zip``. The tables are written when the block ends, also
    when it ends by an error: they then hold every image finished before it.
    """

    def __init__(
        self,
        output_dir: str | Path,
        overlay: bool = True,
        pixel_size_um: float | None = None,
        properties: Sequence[str] | None = None,
        save_probabilities: bool = False,
        roi_zip: bool = False,
    ) -> None:
        select_properties(properties)  # an unknown name fails before any image is segmented
        self.output_dir = Path(output_dir)
        self.overlay = overlay
        self.pixel_size_um = pixel_size_um
        self.properties = properties
        self.save_probabilities = save_probabilities
        self.roi_zip = roi_zip
        self._open = False
        self._nuclei: list[pd.DataFrame] = []
        self._summary: list[dict[str, Any]] = []
        self._submission: list[dict[str, str]] = []

    def __enter__(self) -> PredictionWriter:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._nuclei, self._summary, self._submission = [], [], []
        self._open = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._open = False
        self._write_tables()

    def write(
        self,
        image_id: str,
        source: Path,
        image: np.ndarray,
        labels: np.ndarray,
        raw: np.ndarray | None = None,
        probabilities: np.ndarray | None = None,
    ) -> int:
        """Write one image's files and table rows; returns its number of nuclei.

        ``image``: the uint8 RGB copy the network saw (drawn under the overlay). ``raw``: the
        original pixels, measured in ``nuclei.csv`` (read again from ``source`` if not
        given). ``probabilities``: the (C, H, W) maps, measured (``probability_mean``) and
        saved if the writer was built with ``save_probabilities``.
        """
        if not self._open:
            raise RuntimeError("PredictionWriter must be used inside a `with` block")
        labels = np.asarray(labels)
        raw = read_raw_image(source) if raw is None else raw
        table = measure_nuclei(
            raw,
            labels,
            probabilities=probabilities,
            properties=self.properties,
            pixel_size_um=self.pixel_size_um,
        )
        self._write_image_files(image_id, image, labels, probabilities)
        table.insert(0, "image", image_id)
        self._nuclei.append(table)
        self._summary.append(_summary_row(image_id, source, labels, len(table)))
        encoded = instance_rles(labels) or [(0, "")]
        self._submission += [{"ImageId": image_id, "EncodedPixels": rle} for _, rle in encoded]
        return len(table)

    def _write_image_files(
        self,
        image_id: str,
        image: np.ndarray,
        labels: np.ndarray,
        probabilities: np.ndarray | None,
    ) -> None:
        """The per-image files: mask, labels, and the optional overlay, maps and ROIs."""
        out = self.output_dir
        save_png(out / f"{image_id}_mask.png", ((labels > 0) * 255).astype(np.uint8))
        save_labels(out / f"{image_id}_labels.tif", labels, self.pixel_size_um)
        if self.overlay:
            save_png(out / f"{image_id}_overlay.png", overlay_outlines(image, labels))
        if self.save_probabilities and probabilities is not None:
            path = out / f"{image_id}_probabilities.tif"
            save_probabilities(path, probabilities, self.pixel_size_um)
        if self.roi_zip:
            save_roi_zip(out / f"{image_id}_rois.zip", labels)

    def _write_tables(self) -> None:
        """``nuclei.csv``, ``summary.csv`` and ``submission.csv`` of the images written."""
        out = self.output_dir
        save_table(out / "nuclei.csv", self._nuclei_table())
        save_table(out / "summary.csv", pd.DataFrame(self._summary, columns=SUMMARY_COLUMNS))
        submission = pd.DataFrame(self._submission, columns=SUBMISSION_COLUMNS)
        save_table(out / "submission.csv", submission)

    def _nuclei_table(self) -> pd.DataFrame:
        """Every image's nuclei in one table; channels missing from an image are left blank."""
        measured = [table for table in self._nuclei if len(table)]
        if measured:
            return pd.concat(measured, ignore_index=True)
        if self._nuclei:
            return self._nuclei[0]
        # No image written: the header a grey image without probabilities would have.
        asked = self.properties
        properties = None if asked is None else [p for p in asked if p != "probability_mean"]
        empty = measure_nuclei(np.zeros((1, 1)), np.zeros((1, 1), np.uint32), properties=properties)
        return empty.assign(image="")[["image", *empty.columns]]


def _summary_row(image_id: str, source: Path, labels: np.ndarray, count: int) -> dict[str, Any]:
    """One image's row of ``summary.csv``."""
    area = int(np.count_nonzero(labels))
    return {
        "image": image_id,
        "file": str(source),
        "height": labels.shape[0],
        "width": labels.shape[1],
        "nuclei": count,
        "covered_fraction": round(area / labels.size, 6),
        "mean_area": round(area / count, 2) if count else None,
    }
