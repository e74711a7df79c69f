"""Read microscopy images and masks of any common mode into plain numpy arrays.

Images become uint8 RGB: alpha dropped, grayscale repeated, palette expanded, 16-bit and
float data scaled by robust percentiles. Masks become int32 instance label images: a binary
mask (0/255, 0/1) is split into connected components, an integer label image keeps its labels.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import tifffile
from PIL import Image
from scipy import ndimage as ndi

from nuclei.data.validation import some

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
TIFF_SUFFIXES = (".tif", ".tiff")
LOSSY_SUFFIXES = (".jpg", ".jpeg")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


class ImageReadError(ValueError):
    """A file could not be read as an image or mask; the message names the file."""


def _is_16bit_colour_png(path: Path) -> bool:
    """Pillow reads 16-bit RGB(A) PNGs as 8-bit; detect them from the PNG header."""
    with path.open("rb") as handle:
        header = handle.read(26)
    # IHDR data starts at byte 16: width, height (4 bytes each), bit depth, colour type.
    return header[:8] == _PNG_SIGNATURE and header[24] == 16 and header[25] in (2, 6)


def _load_array(path: Path, keep_palette_indices: bool = False) -> np.ndarray:
    """Decode a file into an array, keeping its native dtype and channels (RGB order)."""
    try:
        suffix = path.suffix.lower()
        if suffix in TIFF_SUFFIXES:
            return np.asarray(tifffile.imread(path))
        if suffix == ".png" and _is_16bit_colour_png(path):
            array = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
            if array is None:
                raise ValueError("OpenCV could not decode it")
            return array[..., [2, 1, 0, 3][: array.shape[-1]]]  # BGR(A) -> RGB(A)
        with Image.open(path) as image:
            if image.mode == "P" and not keep_palette_indices:
                image = image.convert("RGBA" if "transparency" in image.info else "RGB")
            elif image.mode in ("LA", "PA"):
                image = image.convert("RGBA")
            elif image.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                image = image.convert("RGB")
            return np.asarray(image)
    # Decoders raise many types for a damaged file (OSError, ValueError, SyntaxError,
    # zlib.error, tifffile errors...); each means the same thing here.
    except Exception as exc:
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


def _channels_last(array: np.ndarray) -> np.ndarray:
    """A channel-first (C, H, W) TIFF as (H, W, C); other arrays as they are."""
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        return np.moveaxis(array, 0, -1)
    return array


def _collapse_grey(array: np.ndarray) -> np.ndarray:
    """(H, W, 1), and RGB(A) whose colour channels are all equal, as (H, W); others as given."""
    if array.ndim == 3 and array.shape[-1] == 1:
        return array[..., 0]
    if array.ndim == 3 and array.shape[-1] in (3, 4) and (array[..., :3] == array[..., :1]).all():
        return array[..., 0]
    return array


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as uint8 RGB (H, W, 3): alpha dropped, grayscale repeated, >8-bit scaled."""
    path = Path(path)
    array = _channels_last(_load_array(path))
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
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageReadError(f"{path}: image has no pixels (shape {array.shape})")
    return np.ascontiguousarray(array)


def read_raw_image(path: str | Path) -> np.ndarray:
    """The file's pixels in their own dtype, for measurements (not for the network).

    (H, W) grey or (H, W, 3) colour, alpha dropped: a 16-bit nucleus at 3,300 counts stays at
    3,300 (:func:`read_image` gives the network a percentile-scaled uint8 copy instead). A grey
    image stored as RGB(A) (equal colour channels, as in DSB2018's PNGs) is returned as (H, W),
    so it is measured as one channel, not three identical ones.
    """
    path = Path(path)
    array = _collapse_grey(_channels_last(_load_array(path)))
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        array = array[..., :3]
    if array.ndim != 2 and not (array.ndim == 3 and array.shape[-1] == 3):
        raise ImageReadError(
            f"{path}: expected a 2-D grayscale or (H, W, 3|4) colour image, got shape {array.shape}"
        )
    return np.ascontiguousarray(array)


def read_mask(path: str | Path) -> np.ndarray:
    """Read a mask as a 2-D array in its own dtype (0/255, 0/1 or integer labels).

    Palette masks keep their indices; colour masks whose channels differ (one colour per
    nucleus) become one integer per colour.
    """
    path = Path(path)
    array = _collapse_grey(_load_array(path, keep_palette_indices=True))
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        colour = array[..., :3].astype(np.int64)
        array = (colour[..., 0] << 32) | (colour[..., 1] << 16) | colour[..., 2]
    if array.ndim != 2:
        raise ImageReadError(f"{path}: expected a 2-D mask, got shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise ImageReadError(f"{path}: expected numeric mask values, got dtype {array.dtype}")
    return array


def mask_to_labels(mask: np.ndarray, lossy: bool = False) -> tuple[np.ndarray, bool]:
    """Turn a merged mask into an int32 label image; also say whether it was binary.

    A mask with one non-zero value (0/255, 0/1) is binary: its instances are taken as
    8-connected components, so touching nuclei stay merged. A mask with several non-zero
    values is a label image: each value is one nucleus (relabelled 1..n). ``lossy`` (JPEG)
    masks are thresholded at half their maximum, since compression invents values.
    """
    if lossy:
        mask = mask > (float(mask.max()) / 2 if mask.size else 0)
    values = np.unique(mask)
    foreground = values[values != 0]
    if foreground.size <= 1:
        labels, _ = ndi.label(mask != 0, structure=_EIGHT_CONNECTED)
        return labels.astype(np.int32, copy=False), True
    if (foreground < 0).any():
        raise ValueError(f"label image has negative values ({foreground.min()})")
    compact = np.searchsorted(values, mask)  # 0 stays 0 (it is the smallest value)
    if values[0] != 0:
        compact += 1
    return compact.astype(np.int32), False


def read_label_mask(
    path: str | Path, notes: list[str] | None = None, guessed: list[Path] | None = None
) -> np.ndarray:
    """Read a merged mask (one file per image) as an int32 instance label image.

    A label image (several non-zero values) gives its nuclei exactly. A binary mask's
    instances are guessed from its connected components: when it has more than one, its
    path is appended to ``guessed`` (touching nuclei there are one). Appends to ``notes``
    when a label image looks like an interpolated binary mask.
    """
    path = Path(path)
    mask = read_mask(path)
    try:
        labels, binary = mask_to_labels(mask, lossy=path.suffix.lower() in LOSSY_SUFFIXES)
    except ValueError as exc:
        raise ImageReadError(f"{path}: {exc}") from exc
    if guessed is not None and binary and labels.max() > 1:
        guessed.append(path)
    if notes is not None and not binary:
        areas = np.bincount(labels.ravel())[1:]
        if areas.size >= 10 and np.median(areas) < 4:
            notes.append(
                f"{path}: read as a label image with {areas.size} labels, most under 4 pixels "
                "(an interpolated binary mask?)"
            )
    return labels


def read_instance_masks(
    paths: list[Path] | tuple[Path, ...],
    shape: tuple[int, int],
    notes: list[str] | None = None,
) -> np.ndarray:
    """Merge one-file-per-nucleus masks into an int32 label image (instance k gets label k+1).

    Masks must match ``shape``. Empty masks and pixels claimed by two masks are reported in
    ``notes`` (when given); a pixel claimed twice goes to the later mask.
    """
    labels = np.zeros(shape, dtype=np.int32)
    flat = labels.reshape(-1)  # a view
    empty, overlapping = [], []
    for index, path in enumerate(paths, start=1):
        mask = read_mask(path)
        if mask.shape != tuple(shape):
            raise ImageReadError(
                f"{path}: mask is {mask.shape[0]}x{mask.shape[1]} but its image is "
                f"{shape[0]}x{shape[1]}"
            )
        # One pass over the image, then work on the nucleus's few pixels only.
        pixels = np.flatnonzero(mask > 0)
        if pixels.size == 0:
            empty.append(path.name)
        elif flat[pixels].any():
            overlapping.append(path.name)
        flat[pixels] = index
    if notes is not None and empty:
        notes.append(f"{paths[0].parent}: {len(empty)} empty mask file(s): {some(empty)}")
    if notes is not None and overlapping:
        notes.append(
            f"{paths[0].parent}: {len(overlapping)} mask(s) overlap earlier ones (the later "
            f"mask keeps the shared pixels): {some(overlapping)}"
        )
    return labels
