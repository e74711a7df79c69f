"""Read microscopy images and masks of any common mode into plain numpy arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
TIFF_SUFFIXES = (".tif", ".tiff")


class ImageReadError(ValueError):
    """A file could not be read as an image or mask; the message names the file."""


def _load_array(path: Path) -> np.ndarray:
    """Decode a file into an array, keeping its native dtype and channels."""
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            return np.asarray(tifffile.imread(path))
        with Image.open(path) as image:
            if image.mode == "P":
                image = image.convert("RGBA" if "transparency" in image.info else "RGB")
            elif image.mode in ("1", "CMYK", "YCbCr", "LAB", "HSV", "LA", "PA"):
                image = image.convert("RGBA" if image.mode in ("LA", "PA") else "RGB")
            return np.asarray(image)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise ImageReadError(f"{path}: cannot be read as an image ({exc})") from exc


def to_uint8(
    array: np.ndarray, low_percentile: float = 0.5, high_percentile: float = 99.5
) -> np.ndarray:
    """Scale an integer or float array to uint8, by robust percentiles unless already 8-bit."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    values = array.astype(np.float64)
    low, high = np.percentile(values, [low_percentile, high_percentile])
    if high <= low:
        high = low + 1.0
    scaled = np.clip((values - low) / (high - low), 0.0, 1.0)
    return np.round(scaled * 255.0).astype(np.uint8)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as uint8 RGB (H, W, 3): alpha dropped, grayscale repeated, >8-bit scaled."""
    path = Path(path)
    array = _load_array(path)
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)  # channel-first TIFF
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = np.repeat(to_uint8(array)[..., None], 3, axis=-1)
    elif array.ndim == 3 and array.shape[-1] in (3, 4):
        array = to_uint8(array[..., :3])
    else:
        raise ImageReadError(
            f"{path}: expected a 2-D grayscale or (H, W, 3|4) colour image, got shape {array.shape}"
        )
    return np.ascontiguousarray(array)


def read_mask(path: str | Path) -> np.ndarray:
    """Read a mask as a 2-D array in its own dtype (0/255, 0/1 or integer labels)."""
    path = Path(path)
    array = _load_array(path)
    if array.ndim == 3:
        if array.shape[-1] in (3, 4):
            array = array[..., :3].max(axis=-1)
        elif array.shape[-1] == 1:
            array = array[..., 0]
    if array.ndim != 2:
        raise ImageReadError(f"{path}: expected a 2-D mask, got shape {array.shape}")
    return array


def read_instance_masks(paths: list[Path] | tuple[Path, ...], shape: tuple[int, int]) -> np.ndarray:
    """Merge one-file-per-nucleus masks into an int32 label image (instance k gets label k+1)."""
    labels = np.zeros(shape, dtype=np.int32)
    for index, path in enumerate(paths, start=1):
        mask = read_mask(path)
        if mask.shape != shape:
            raise ImageReadError(
                f"{path}: mask is {mask.shape[0]}x{mask.shape[1]} but its image is "
                f"{shape[0]}x{shape[1]}"
            )
        labels[mask > 0] = index
    return labels
