"""Intensity normalisation: how an image's pixel values become the network's [0, 1] input.

Two modes (:class:`~nuclei.data.config.IntensityConfig`):

- ``none``: 8-bit values divided by 255, the classic notebooks' convention and the default.
  Only uint8 images (and float images already in [0, 1], passed through) are accepted; a
  16-bit or other image has no agreed 8-bit scale, so it is refused rather than guessed.
- ``percentile``: each channel of each image is stretched between its ``low`` and ``high``
  percentiles, ``(x - p_low) / (p_high - p_low)``, the CSBDeep/StarDist convention
  (``normalize(img, 1, 99.8)``). A dim image and a bright one of the same nuclei become the
  same input, and the result does not depend on the unit of the data: ``x`` (uint8),
  ``x * 257`` (uint16) and ``x / 255`` (float) give the same array.
"""

from __future__ import annotations

import numpy as np

from nuclei.data.config import IntensityConfig

__all__ = ["channel_percentiles", "normalize_image"]


def _check_image(image: np.ndarray) -> None:
    """Raise a ValueError unless ``image`` is a finite numeric (H, W, C) array."""
    if image.ndim != 3:
        raise ValueError(f"expected an (H, W, C) image, got shape {image.shape}")
    if image.size == 0:
        raise ValueError(f"image has no pixels (shape {image.shape})")
    if image.dtype.kind not in "uif":
        raise ValueError(f"expected an integer or float image, got dtype {image.dtype}")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise ValueError("image has NaN or infinite values; replace them first (np.nan_to_num)")


def _divide_by_255(image: np.ndarray) -> np.ndarray:
    """``none`` mode: uint8 / 255; float in [0, 1] as it is; anything else refused."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / np.float32(255.0)
    if image.dtype.kind == "f" and image.min() >= 0 and image.max() <= 1:
        return image.astype(np.float32)
    found = f"{image.dtype} values in [{image.min()}, {image.max()}]"
    raise ValueError(
        f"data.intensity.normalize=none takes uint8 images (divided by 255) or float images in "
        f"[0, 1], got {found}. Use data.intensity.normalize=percentile, or convert the image "
        "to 8-bit first (nuclei.data.sources.io.to_uint8, as nuclei-predict does)"
    )


def channel_percentiles(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """The ``low`` and ``high`` percentiles of each channel of an (H, W, C) image, (2, C).

    Same values as ``np.percentile`` (linear interpolation); 8- and 16-bit channels are
    counted with a histogram, several times faster on large images.
    """
    result = np.empty((2, image.shape[-1]), np.float64)
    for c in range(image.shape[-1]):
        channel = image[..., c].ravel()
        if image.dtype not in (np.uint8, np.uint16):
            result[:, c] = np.percentile(channel, [low, high])
            continue
        ends = np.cumsum(np.bincount(channel))  # sorted[k] is the first v with ends[v] > k
        for row, q in enumerate((low, high)):
            position = q / 100.0 * (channel.size - 1)
            below = int(np.floor(position))
            above = min(below + 1, channel.size - 1)
            a, b = np.searchsorted(ends, [below, above], side="right")
            result[row, c] = a + (b - a) * (position - below)
    return result


def _stretch_percentiles(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """``percentile`` mode: each channel stretched between its percentiles, clipped to [0, 1].

    A channel whose two percentiles are equal (a constant channel, or one whose values are
    nearly all one value) has no scale to divide by; it becomes the limit of the stretch as
    the span shrinks to 0: 1 where a pixel is above ``p_low``, 0 elsewhere (all zeros for a
    constant channel).
    """
    p_low, p_high = channel_percentiles(image, low, high)
    span = p_high - p_low
    flat = span <= 0
    # float32 holds 8/16-bit and float32 values exactly; wider types keep float64 precision
    exact = image.dtype.itemsize <= 2 or image.dtype == np.float32
    values = image.astype(np.float32 if exact else np.float64)
    offset = p_low.astype(values.dtype)
    gain = np.where(flat, 0.0, 1.0 / np.where(flat, 1.0, span)).astype(values.dtype)
    scaled = (values - offset) * gain
    if flat.any():
        scaled[..., flat] = values[..., flat] > offset[flat]
    return np.clip(scaled, 0.0, 1.0, out=scaled).astype(np.float32, copy=False)


def normalize_image(image: np.ndarray, config: IntensityConfig) -> np.ndarray:
    """An (H, W, C) uint8, uint16 or float image as float32 (H, W, C) in [0, 1].

    ``config.normalize`` chooses the mode (see the module docstring). In ``percentile`` mode
    the result is clipped to [0, 1], unlike CSBDeep's ``normalize`` (which lets the brightest
    0.2% exceed 1): the augmentations (brightness, gamma, noise, invert) and the network's
    training data assume that range, and a handful of saturated pixels must not stretch it.
    """
    image = np.asarray(image)
    _check_image(image)
    if config.normalize == "percentile":
        return _stretch_percentiles(image, config.low, config.high)
    return _divide_by_255(image)
