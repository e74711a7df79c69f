"""The files of a prediction, one function each, every one written atomically.

Each file is written to a hidden temporary file in its target's folder and renamed over the
target (``os.replace``, atomic on POSIX), so an interrupted prediction leaves whole files
only: the same guarantee as :mod:`nuclei.runs.atomic`, which this layer may not import.

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

import os
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import roifile
import tifffile
from scipy import ndimage as ndi
from skimage.measure import find_contours

from nuclei.files import naming_full_disk

IMAGEJ_UNIT = "micron"  # ImageJ's own spelling; it shows it as µm


def _current_umask() -> int:
    """The process's file-creation mask (reading it means setting it, so set it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed to ``path`` if the block succeeds.

    The temporary name is hidden (``.<name>.partial-<random><suffix>``) and keeps the
    suffix, for writers that choose a format by it; it is removed if the block fails (a
    killed process leaves it, for :func:`nuclei.inference.image_records.remove_leftovers`).
    """
    path = Path(path)
    with naming_full_disk(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(
            prefix=f".{path.name}.partial-", suffix=path.suffix, dir=path.parent
        )
        os.close(descriptor)
        temporary = Path(name)
        try:
            yield temporary
            os.chmod(temporary, 0o666 & ~_current_umask())  # mkstemp makes it private (0600)
            with temporary.open("rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise


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
