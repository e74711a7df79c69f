"""The images a prediction reads: found in a folder, checked, decoded for the network and
for measuring.

:func:`find_images` lists the files to segment; :func:`read_for_segmenting` decodes one into
a :class:`LoadedImage`. A file that cannot be read (damaged, oversized, an unsupported
layout) becomes a :class:`LoadedImage` carrying the error, so one bad file is reported and
skipped without stopping the others. No torch here: the postprocessing processes import this
module (and start faster without it); the dataset over these files is in
:mod:`nuclei.inference.segment`.

Absurd sizes are refused before any pixel is decoded (:func:`refuse_oversized`): a small file
can declare a huge image (a "decompression bomb"); decoding it would exhaust memory. The size
is read from the file header (Pillow, tifffile) and checked first.

Numpy images of any dtype and layout as the (H, W, 3) uint8 input the network was trained on.

Arrays of any dtype and layout become the (H, W, 3) uint8 input the network was trained
on: :func:`as_network_image` treats an array exactly as :func:`nuclei.data.sources.io.read_image`
treats a file holding the same pixels (the same :func:`~nuclei.data.sources.io.to_uint8`
scaling, the same grayscale and alpha handling), so segmenting an array and segmenting the
file it was saved to give the same labels.

How each dtype becomes 8-bit, and why a float [0, 1] image and its uint8 and uint16 versions
agree:

- ``uint8`` is taken as it is, as the 8-bit training images were.
- ``bool`` becomes 0/255.
- Every other dtype (uint16, other integers, float in [0, 1] or in any range) is stretched
  linearly between its 0.5th and 99.5th percentiles onto 0..255. That stretch does not depend
  on the unit of the data: ``x`` and ``a * x + b`` (``a > 0``) give the same 8-bit image, so a
  float image in [0, 1] and the same picture as uint16 counts (``x * 65535``) are identical
  inputs. The uint8 version of a picture that spans 0..255 (as any stretched 8-bit image does)
  is the fixed point of that stretch, so it is the identical input too.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from nuclei.data.sources.io import (
    IMAGE_SUFFIXES,
    TIFF_SUFFIXES,
    ImageReadError,
    read_raw_image,
    to_uint8,
)


@dataclass
class LoadedImage:
    """One input file, decoded: its raw pixels (measured) and the network's uint8 RGB copy.

    ``error`` names the file and what was wrong when it could not be read; the arrays are
    then None.
    """

    image_id: str
    path: Path
    raw: np.ndarray | None = None
    image: np.ndarray | None = None
    error: str | None = None


def _images_in(folder: Path) -> list[Path]:
    """The visible files of ``folder`` with an image suffix, and the symbolic links so named
    that lead to no file (a loop, a missing target): those are reported when read, not
    passed over in silence."""
    return [
        p
        for p in folder.iterdir()
        if (p.is_file() or (p.is_symlink() and not p.is_dir()))
        and not p.name.startswith(".")
        and p.suffix.lower() in IMAGE_SUFFIXES
    ]


def find_images(path: str | Path) -> list[Path]:
    """The images to segment: a file, or a folder's image files (Kaggle ``<id>/images/`` too).

    Hidden files and folders and files without an image suffix are ignored (a prediction's
    records, ``.nuclei-predict/``, are never read as images); two images with the same
    id (file stem) are refused, since their outputs would collide.
    """
    path = Path(path).expanduser()
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: input file or folder not found")
    found = _images_in(path)
    kaggle = (d for d in path.iterdir() if not d.name.startswith(".") and d.is_dir())
    for sub in sorted(d for d in kaggle if (d / "images").is_dir()):
        found += _images_in(sub / "images")
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
    with pillow_pixel_limit(max_pixels):
        raw = read_raw_image(path)
    try:
        return raw, as_network_image(raw)
    except ValueError as exc:
        raise ImageReadError(f"{path}: {exc}") from exc


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


#: Sizes of a last axis read as colour channels: gray (1), RGB (3), RGBA (4, alpha dropped).
COLOUR_CHANNELS = (1, 3, 4)


def _channel_axis(shape: tuple[int, ...]) -> int:
    """The channel axis of a 3-D array: the last, unless the first is the smaller."""
    return 0 if shape[0] < shape[-1] else 2


def select_channel(array: np.ndarray, channel: int) -> np.ndarray:
    """Plane ``channel`` of an (H, W, C) or (C, H, W) array (the shorter end axis is C)."""
    if array.ndim != 3:
        raise ValueError(
            f"channel={channel} selects one plane of an (H, W, C) or (C, H, W) array, but the "
            f"image has shape {array.shape}; leave channel unset for a 2-D image"
        )
    axis = _channel_axis(array.shape)
    count = array.shape[axis]
    if not -count <= channel < count:
        raise ValueError(
            f"channel={channel} is out of range: the image of shape {array.shape} has {count} "
            f"channels on axis {axis} (0..{count - 1})"
        )
    return np.take(array, channel, axis=axis)


def _refuse_stack(array: np.ndarray) -> None:
    """Raise the error for a 3-D array whose channels cannot be read as gray, RGB or RGBA."""
    axis = _channel_axis(array.shape)
    count = array.shape[axis]
    if axis == 0:
        what = f"a stack of {count} planes, channels first"
        rgb = "; for an RGB(A) image put the channels last: np.moveaxis(image, 0, -1)"
    else:
        what = f"an image with {count} channels, channels last"
        rgb = ""
    raise ValueError(
        f"ambiguous image of shape {array.shape} ({what}): pass channel=k to segment plane k "
        f"(0..{count - 1}), e.g. segment(image, channel=0){rgb}. Accepted without channel=: "
        "(H, W), (H, W, 1), (H, W, 3) RGB, (H, W, 4) RGBA"
    )


def as_network_image(image: np.ndarray, channel: int | None = None) -> np.ndarray:
    """An image array as contiguous (H, W, 3) uint8, normalised like a file read from disk.

    Accepts (H, W), (H, W, 1), (1, H, W), (H, W, 3) and (H, W, 4) arrays of any numeric dtype;
    ``channel`` selects one plane of an (H, W, C) or (C, H, W) array first. Any other 3-D
    shape (a (3, H, W) stack, say) is refused with a ValueError saying how to pass
    ``channel=``. See the module docstring for how each dtype becomes 8-bit.
    """
    array = np.asarray(image)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"expected a numeric image array, got dtype {array.dtype}")
    if channel is not None:
        array = select_channel(array, channel)
    if array.ndim == 3 and array.shape[0] == 1 and array.shape[-1] not in COLOUR_CHANNELS:
        array = array[0]
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 3 and array.shape[-1] not in COLOUR_CHANNELS:
        _refuse_stack(array)
    if array.ndim not in (2, 3):
        raise ValueError(
            f"expected a 2-D (H, W) or 3-D (H, W, C) image, got shape {array.shape}; "
            "segment a volume plane by plane"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"image has no pixels (shape {array.shape})")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError("image has NaN or infinite values; replace them first (np.nan_to_num)")
    if array.ndim == 2:
        return np.ascontiguousarray(np.repeat(to_uint8(array)[..., None], 3, axis=-1))
    return np.ascontiguousarray(to_uint8(array[..., :3]))
