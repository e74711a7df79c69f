"""Refuse images whose declared size is absurd before any pixel is decoded.

A small file can declare a huge image (a "decompression bomb"); decoding it would exhaust
memory. The size is read from the file header (Pillow, tifffile) and checked first.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import tifffile
from PIL import Image

from nuclei.data.sources.io import TIFF_SUFFIXES, ImageReadError

__all__ = ["ImageTooLargeError", "declared_size", "pillow_pixel_limit", "refuse_oversized"]


class ImageTooLargeError(ValueError):
    """An image declares more pixels than allowed; the message names the file and sizes."""


def _spatial_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """(height, width) of an array shape: (H, W), (H, W, C) or (C, H, W) with C <= 4."""
    if len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) == 3 and shape[-1] <= 4:
        return shape[0], shape[1]
    if len(shape) == 3 and shape[0] <= 4:
        return shape[1], shape[2]
    # Stacks and other layouts: count every plane, so the limit still bounds memory.
    return math.prod(shape[:-1]), shape[-1]


def declared_size(path: str | Path) -> tuple[int, int]:
    """(height, width) an image file declares in its header, without decoding its pixels."""
    path = Path(path)
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            with tifffile.TiffFile(path) as tif:
                return _spatial_shape(tuple(tif.series[0].shape))
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None  # only the header is read here; the check is ours
        try:
            with Image.open(path) as image:
                width, height = image.size
        finally:
            Image.MAX_IMAGE_PIXELS = saved
        return height, width
    except Exception as exc:  # decoders raise many types for a damaged header
        raise ImageReadError(f"{path}: cannot be read as an image ({exc})") from exc


def refuse_oversized(path: str | Path, max_pixels: int) -> None:
    """Raise :class:`ImageTooLargeError` if ``path`` declares more than ``max_pixels`` pixels."""
    height, width = declared_size(path)
    if height * width > max_pixels:
        raise ImageTooLargeError(
            f"{path}: declares {width}x{height} = {height * width:,} pixels, more than "
            f"max_pixels={max_pixels:,}; refused without decoding (a decompression bomb?)"
        )


@contextmanager
def pillow_pixel_limit(max_pixels: int) -> Iterator[None]:
    """Let Pillow decode images up to ``max_pixels`` (its own default limit is ~89 Mpx)."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max(int(max_pixels), saved or 0)
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved
