"""Read an image file's original pixel values, for measurements (not for the network).

:func:`nuclei.data.sources.io.read_image` gives the network a uint8 RGB copy scaled by
percentiles; intensities measured on it are not the camera's. :func:`read_raw_image` keeps
the file's own dtype and values: a 16-bit nucleus at 3,300 counts stays at 3,300.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# The one decoder of every format the package reads (TIFF, 8/16-bit PNG, palette...); private
# there, reused rather than copied so both readers decode a file the same way.
from nuclei.data.sources.io import ImageReadError, _load_array


def _channels_last(array: np.ndarray) -> np.ndarray:
    """(C, H, W) TIFFs become (H, W, C), by the same rule as ``read_image``."""
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        return np.moveaxis(array, 0, -1)
    return array


def read_raw_image(path: str | Path) -> np.ndarray:
    """The file's pixels in their own dtype: (H, W) grey or (H, W, 3) colour, alpha dropped.

    A grey image stored as RGB(A) (all colour channels equal, as in DSB2018's PNGs) is
    returned as (H, W), so it is measured as one channel, not three identical ones.
    """
    path = Path(path)
    array = _channels_last(_load_array(path))
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        array = array[..., :3]
        if (array == array[..., :1]).all():
            array = array[..., 0]
    if array.ndim != 2 and not (array.ndim == 3 and array.shape[-1] == 3):
        raise ImageReadError(
            f"{path}: expected a 2-D grayscale or (H, W, 3|4) colour image, got shape {array.shape}"
        )
    return np.ascontiguousarray(array)
