"""Numpy images of any dtype and layout as the (H, W, 3) uint8 input the network was trained on.

:func:`as_network_image` treats an array exactly as :func:`nuclei.data.sources.io.read_image`
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

import numpy as np

from nuclei.data.sources.io import to_uint8

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
