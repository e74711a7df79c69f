"""Files a prediction run writes: per-image masks, labels and overlays, and three CSV tables.

Per image ``<id>``: ``<id>_mask.png`` (0/255), ``<id>_labels.tif`` (uint32 instance labels,
0 background, ImageJ metadata), ``<id>_overlay.png`` (nucleus outlines over the image) and,
when asked for, ``<id>_probabilities.tif`` (float32 (C, H, W)) and ``<id>_rois.zip`` (ImageJ
ROI set of the outlines). For the whole input: ``nuclei.csv`` (one row per nucleus, measured
by :func:`nuclei.inference.measure.measure_nuclei` on the file's raw pixels),
``summary.csv`` (one row per image) and ``submission.csv`` (Kaggle DSB2018 format:
``ImageId,EncodedPixels``, one row per nucleus; an image without nuclei gets one row with
empty ``EncodedPixels``). Every file is written atomically.

:class:`ImageFileWriter` writes one image's files and its record
(:mod:`nuclei.inference.output_folder`), in whichever process segments it;
:func:`write_tables` assembles the three tables from the records of the input's images.
:class:`PredictionWriter` does both for images written one after another.

Each file is written to a hidden temporary file in its target's folder and renamed over the
target (:func:`nuclei.files.atomic_path`), so an interrupted prediction leaves whole files
only.

Label images are uint32 TIFFs carrying ImageJ's metadata (an ``ImageJ=`` image description
with the unit and display range, pixel size in the resolution tags). ImageJ's own TIFF
flavour (``tifffile.imwrite(imagej=True)``) allows only 8/16-bit integers and float32; a
uint16 label image opens in napari as an image layer and holds 65,535 nuclei at most, a
float32 one is no label image at all. So the TIFF is a plain uint32 one with ImageJ's
description: tifffile reads it back as uint32 with ``imagej_metadata``, napari opens
uint32 as a Labels layer, and Fiji reads 32-bit unsigned TIFFs (as a 32-bit image, labels
exact to 16.7 million) with the calibration.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import cv2
import numpy as np
import pandas as pd
import roifile
import tifffile
from scipy import ndimage as ndi
from skimage.measure import find_contours

from nuclei.data.sources.io import read_raw_image
from nuclei.data.sources.rle import instance_rles
from nuclei.files import atomic_path
from nuclei.inference.measure import measure_nuclei, select_properties
from nuclei.inference.output_folder import ImageRecord, save_record

SUMMARY_COLUMNS = ("image", "file", "height", "width", "nuclei", "covered_fraction", "mean_area")
SUBMISSION_COLUMNS = ("ImageId", "EncodedPixels")
OUTLINE_RGB = (255, 255, 0)  # yellow: visible on dark fluorescence and on stained tissue


def inner_outlines(labels: np.ndarray) -> np.ndarray:
    """Each nucleus' pixels that have a 4-neighbour of another label (background included).

    The ``mode="inner"`` boundaries of :func:`skimage.segmentation.find_boundaries` (pixels
    beyond the image's edge count as the edge pixel's own label), from four array shifts
    instead of two grey-level morphology passes: ~5x less CPU on a 1024^2 image.
    """
    labels = np.asarray(labels)
    outline = np.zeros(labels.shape, dtype=bool)
    vertical = labels[1:] != labels[:-1]
    horizontal = labels[:, 1:] != labels[:, :-1]
    outline[1:] |= vertical
    outline[:-1] |= vertical
    outline[:, 1:] |= horizontal
    outline[:, :-1] |= horizontal
    outline &= labels != 0
    return outline


def overlay_outlines(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The (H, W, 3) uint8 image (a uint8 (H, W) one made RGB) with each nucleus' outline
    drawn in yellow: :func:`skimage.segmentation.mark_boundaries` with ``mode="inner"``."""
    image, labels = np.asarray(image), np.asarray(labels)
    rgb_or_grey = image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)
    if image.dtype != np.uint8 or not rgb_or_grey or image.shape[:2] != labels.shape:
        raise ValueError(
            f"overlay needs a uint8 (H, W) or (H, W, 3) image matching labels {labels.shape}, "
            f"got {image.dtype} {image.shape}"
        )
    marked = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image.copy()
    marked[inner_outlines(labels)] = OUTLINE_RGB
    return marked


@dataclass(frozen=True)
class ImageFileWriter:
    """Writes one segmented image's files, then its record (picklable: runs in any process).

    ``pixel_size_um`` adds µm columns to ``nuclei.csv`` and calibrates the TIFFs;
    ``properties`` chooses the measurements (``measure_nuclei``'s names);
    ``save_probabilities`` writes ``<id>_probabilities.tif`` for images given their maps;
    ``roi_zip`` writes ``<id>_rois.zip``.
    """

    output_dir: Path
    overlay: bool = True
    pixel_size_um: float | None = None
    properties: tuple[str, ...] | None = None
    save_probabilities: bool = False
    roi_zip: bool = False

    def __post_init__(self) -> None:
        select_properties(self.properties)  # an unknown name fails before any image

    def write(
        self,
        image_id: str,
        source: Path,
        image: np.ndarray,
        labels: np.ndarray,
        raw: np.ndarray | None = None,
        probabilities: np.ndarray | None = None,
    ) -> ImageRecord:
        """Write one image's files, then its record (the mark that it is complete).

        ``image``: the uint8 RGB copy the network saw (drawn under the overlay). ``raw``: the
        original pixels, measured in ``nuclei.csv`` (read again from ``source`` if not
        given). ``probabilities``: the (C, H, W) maps, measured (``probability_mean``) and
        saved if the writer was built with ``save_probabilities``.
        """
        labels = np.asarray(labels)
        raw = read_raw_image(source) if raw is None else raw
        table = measure_nuclei(
            raw,
            labels,
            probabilities=probabilities,
            properties=None if self.properties is None else list(self.properties),
            pixel_size_um=self.pixel_size_um,
        )
        files = self._write_image_files(image_id, image, labels, probabilities)
        table.insert(0, "image", image_id)
        record = ImageRecord(
            image_id=image_id,
            source=str(source),
            files=files,
            summary=_summary_row(image_id, source, labels, len(table)),
            submission=[rle for _, rle in instance_rles(labels)] or [""],
            nuclei=table,
        )
        save_record(self.output_dir, record)
        return record

    def _write_image_files(
        self,
        image_id: str,
        image: np.ndarray,
        labels: np.ndarray,
        probabilities: np.ndarray | None,
    ) -> list[str]:
        """The per-image files (mask, labels, and the optional overlay, maps and ROIs)."""
        out = self.output_dir
        names = [f"{image_id}_mask.png", f"{image_id}_labels.tif"]
        save_png(out / names[0], ((labels > 0) * 255).astype(np.uint8))
        save_labels(out / names[1], labels, self.pixel_size_um)
        if self.overlay:
            names.append(f"{image_id}_overlay.png")
            save_png(out / names[-1], overlay_outlines(image, labels))
        if self.save_probabilities and probabilities is not None:
            names.append(f"{image_id}_probabilities.tif")
            save_probabilities(out / names[-1], probabilities, self.pixel_size_um)
        if self.roi_zip:
            names.append(f"{image_id}_rois.zip")
            save_roi_zip(out / names[-1], labels)
        return names


def write_tables(
    output_dir: Path, records: Sequence[ImageRecord], properties: Sequence[str] | None = None
) -> None:
    """``nuclei.csv``, ``summary.csv`` and ``submission.csv`` of ``records``, in their order."""
    out = Path(output_dir)
    save_table(out / "nuclei.csv", _nuclei_table([r.nuclei for r in records], properties))
    summary = pd.DataFrame([r.summary for r in records], columns=SUMMARY_COLUMNS)
    save_table(out / "summary.csv", summary)
    rows = [{"ImageId": r.image_id, "EncodedPixels": rle} for r in records for rle in r.submission]
    save_table(out / "submission.csv", pd.DataFrame(rows, columns=SUBMISSION_COLUMNS))


def _nuclei_table(tables: list[pd.DataFrame], properties: Sequence[str] | None) -> pd.DataFrame:
    """Every image's nuclei in one table; channels missing from an image are left blank."""
    measured = [table for table in tables if len(table)]
    if measured:
        return pd.concat(measured, ignore_index=True)
    if tables:
        return tables[0]
    # No image written: the header a grey image without probabilities would have.
    asked = None if properties is None else [p for p in properties if p != "probability_mean"]
    empty = measure_nuclei(np.zeros((1, 1)), np.zeros((1, 1), np.uint32), properties=asked)
    return empty.assign(image="")[["image", *empty.columns]]


class PredictionWriter:
    """Writes images one after another and their tables when the block ends (a context).

    Options as :class:`ImageFileWriter`. The tables are written also when the block ends by
    an error: they then hold every image finished before it.
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
        self.files = ImageFileWriter(
            Path(output_dir),
            overlay=overlay,
            pixel_size_um=pixel_size_um,
            properties=None if properties is None else tuple(properties),
            save_probabilities=save_probabilities,
            roi_zip=roi_zip,
        )
        self.output_dir = self.files.output_dir
        self._open = False
        self._records: list[ImageRecord] = []

    def __enter__(self) -> PredictionWriter:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._records = []
        self._open = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._open = False
        write_tables(self.output_dir, self._records, self.files.properties)

    def write(
        self,
        image_id: str,
        source: Path,
        image: np.ndarray,
        labels: np.ndarray,
        raw: np.ndarray | None = None,
        probabilities: np.ndarray | None = None,
    ) -> int:
        """Write one image's files and table rows (see :meth:`ImageFileWriter.write`);
        returns its number of nuclei."""
        if not self._open:
            raise RuntimeError("PredictionWriter must be used inside a `with` block")
        record = self.files.write(image_id, source, image, labels, raw, probabilities)
        self._records.append(record)
        return record.count


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


IMAGEJ_UNIT = "micron"  # ImageJ's own spelling; it shows it as µm


def _resolution(pixel_size_um: float | None) -> tuple[float, float] | None:
    """TIFF X/Y resolution in pixels per µm, as ImageJ writes it (with the unit in the text)."""
    return None if pixel_size_um is None else (1.0 / pixel_size_um, 1.0 / pixel_size_um)


def save_labels(path: Path, labels: np.ndarray, pixel_size_um: float | None = None) -> None:
    """Write an instance label image as a uint32 TIFF with ImageJ metadata (0: background),
    Deflate-compressed: a 1024^2 image of ~200 nuclei takes ~24 kB instead of 4 MB (for a few
    ms more CPU), and ImageJ/Fiji, napari and tifffile read it as they read an uncompressed one."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() > np.iinfo(np.uint32).max):
        raise ValueError(f"{path}: labels must lie in 0..{np.iinfo(np.uint32).max}")
    metadata = {"min": 0, "max": int(labels.max()) if labels.size else 0}
    if pixel_size_um is not None:
        metadata["unit"] = IMAGEJ_UNIT
    description = tifffile.imagej_description(labels.shape, **metadata)
    with atomic_path(path) as temporary:
        tifffile.imwrite(
            temporary,
            labels.astype(np.uint32),
            compression="zlib",
            description=description,
            resolution=_resolution(pixel_size_um),
            resolutionunit="NONE",
            metadata=None,  # no tifffile JSON description beside ImageJ's
        )


def save_probabilities(
    path: Path, probabilities: np.ndarray, pixel_size_um: float | None = None
) -> None:
    """Write (C, H, W) probability maps as a float32 ImageJ hyperstack TIFF (axes ``CYX``).

    ``tifffile.imread`` gives them back as (C, H, W), or (H, W) for one channel (ImageJ
    stores no axis of length 1; ``squeeze=False`` keeps it).
    """
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.ndim == 2:
        probabilities = probabilities[None]
    if probabilities.ndim != 3:
        raise ValueError(f"{path}: probabilities must be (C, H, W), got {probabilities.shape}")
    metadata = {"axes": "CYX", "mode": "grayscale"}
    if pixel_size_um is not None:
        metadata["unit"] = IMAGEJ_UNIT
    with atomic_path(path) as temporary:
        tifffile.imwrite(
            temporary,
            probabilities,
            imagej=True,
            resolution=_resolution(pixel_size_um),
            metadata=metadata,
        )


#: zlib level and row filter of the PNGs a prediction writes. On a 1024^2 RGB overlay,
#: libpng's level 6 with a filter chosen per row takes 192 ms for 769 kB, level 1 with it
#: 42 ms for 891 kB, level 1 with the SUB filter on every row 26 ms for 917 kB: CPU the
#: network needs on a small machine.
PNG_COMPRESS_LEVEL = 1
PNG_FILTER = cv2.IMWRITE_PNG_FILTER_SUB


def save_png(path: Path, array: np.ndarray, compress_level: int = PNG_COMPRESS_LEVEL) -> None:
    """Write a uint8 (H, W) or (H, W, 3) RGB array as a PNG (zlib ``compress_level`` 0-9)."""
    array = np.asarray(array)
    if array.dtype != np.uint8 or not (
        array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)
    ):
        raise ValueError(
            f"{path}: a PNG is written from uint8 (H, W) or (H, W, 3), got "
            f"{array.dtype} {array.shape}"
        )
    pixels = array[..., ::-1] if array.ndim == 3 else array  # OpenCV takes BGR
    options = [cv2.IMWRITE_PNG_COMPRESSION, compress_level, cv2.IMWRITE_PNG_FILTER, PNG_FILTER]
    encoded, data = cv2.imencode(".png", np.ascontiguousarray(pixels), options)
    if not encoded:
        raise OSError(f"{path}: OpenCV could not encode the PNG")
    with atomic_path(path) as temporary:
        temporary.write_bytes(data.tobytes())


def save_table(path: Path, table: pd.DataFrame) -> None:
    """Write a table as CSV (no index column)."""
    with atomic_path(path) as temporary:
        table.to_csv(temporary, index=False)


def outline_rois(labels: np.ndarray) -> list[roifile.ImagejRoi]:
    """One ImageJ freehand ROI per nucleus: its outer outline, at sub-pixel precision.

    The outline is the 0.5 iso-line of the nucleus mask (halfway between its pixels and the
    background), in ImageJ's coordinates, where pixel (row, col) spans [col, col + 1) x
    [row, row + 1). A nucleus in pieces keeps its longest outline; holes are not drawn.
    """
    width = len(str(int(labels.max()))) if labels.size else 1
    rois = []
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        nucleus = np.pad(labels[box] == index, 1)
        outline = max(find_contours(nucleus, 0.5, fully_connected="high"), key=len)[:-1]
        x = outline[:, 1] + box[1].start - 1 + 0.5
        y = outline[:, 0] + box[0].start - 1 + 0.5
        name = f"{index:0{width}d}"
        rois.append(roifile.ImagejRoi.frompoints(np.column_stack([x, y]), name=name))
    return rois


def save_roi_zip(path: Path, labels: np.ndarray) -> None:
    """Write the nuclei's outlines as an ImageJ ROI set (``.zip``, for the ROI Manager)."""
    rois = outline_rois(labels)
    with atomic_path(path) as temporary:
        if rois:
            roifile.roiwrite(temporary, rois, mode="w")
        else:  # an image without nuclei: an empty ROI set
            zipfile.ZipFile(temporary, "w").close()
