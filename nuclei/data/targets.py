"""Training targets derived from instance labels: foreground, touching borders, distances.

A binary U-Net learns only the foreground, so touching nuclei come out as one blob. The
DSB2018 winners also predicted the borders between touching nuclei and split the blobs
with a marker-controlled watershed (:mod:`nuclei.instances.postprocess`). Each target here is a
stack of channels, channel 0 always the foreground ``labels > 0``:

* ``binary``: the foreground alone (1 channel);
* ``border``: foreground, and the band where two different nuclei touch or nearly touch:
  every pixel within ``border_width`` pixels (chessboard distance) of two different nuclei
  (2 channels);
* ``distance``: foreground, and each nucleus' distance to its own edge (nuclei touching
  another are cut apart first) divided by that nucleus' largest distance, so every nucleus
  peaks at 1 (2 channels).

Targets are derived from the labels *after* augmentation (flips, rotations, crops; resizing
is done on the labels with nearest-neighbour interpolation at decode time), so every
channel moves with the image.
"""

from __future__ import annotations

import numpy as np
from omegaconf import OmegaConf
from scipy import ndimage as ndi

__all__ = [
    "INSTANCE_TARGETS",
    "TARGETS",
    "border_band",
    "distance_map",
    "make_target",
    "target_channels",
]

#: Allowed values of ``data.target.kind``, with their number of channels.
TARGETS: dict[str, int] = {"binary": 1, "border": 2, "distance": 2}
#: Targets that need true instance labels (not connected components of a merged mask).
INSTANCE_TARGETS: tuple[str, ...] = ("border", "distance")


def check_target(target: str) -> str:
    """Return ``target`` if it is one of :data:`TARGETS`, else raise a ValueError naming them."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {tuple(TARGETS)}, got {target!r}")
    return target


def target_channels(target: str) -> int:
    """Number of channels (network outputs) of a target: 1 for binary, 2 otherwise."""
    return TARGETS[check_target(target)]


def border_band(labels: np.ndarray, width: int = 1) -> np.ndarray:
    """Boolean (H, W): pixels whose (2 * width + 1)-square window holds two different nuclei.

    The band covers both sides of every line where two nuclei touch, and the background gap
    between nuclei closer than ``2 * width + 1`` pixels; edges against background alone are
    not in it.
    """
    if width < 1:
        raise ValueError(f"border width must be >= 1, got {width}")
    labels = np.asarray(labels)
    if not labels.any():
        return np.zeros(labels.shape, dtype=bool)
    size = 2 * width + 1
    top = ndi.maximum_filter(labels, size=size, mode="constant", cval=0)
    # Background (and outside) counts as "no label" above every real label; a small value,
    # since ndimage passes cval through a float.
    no_label = int(labels.max()) + 1
    lowest = ndi.minimum_filter(
        np.where(labels > 0, labels.astype(np.int64), no_label),
        size=size,
        mode="constant",
        cval=no_label,
    )
    return (top > 0) & (lowest != no_label) & (lowest != top)


def distance_map(labels: np.ndarray) -> np.ndarray:
    """Float32 (H, W) in [0, 1]: each nucleus' distance to its edge over its own maximum.

    Pixels touching another nucleus count as edge, so touching nuclei get separate peaks.
    """
    labels = np.asarray(labels)
    out = np.zeros(labels.shape, dtype=np.float32)
    if not labels.any():
        return out
    inside = (labels > 0) & ~border_band(labels, 1)
    distance = ndi.distance_transform_edt(inside)
    # Nuclei that are all edge (one or two pixels wide) still get 1 on their pixels.
    distance = np.where(labels > 0, np.maximum(distance, 0.5), 0.0)
    peak = ndi.maximum(distance, labels, index=np.arange(int(labels.max()) + 1))
    peak = np.asarray(peak, dtype=np.float64)
    peak[0] = 1.0
    out[:] = distance / np.maximum(peak[labels], 1e-6)
    return out


def make_target(labels: np.ndarray, target: str = "binary", border_width: int = 1) -> np.ndarray:
    """The (C, H, W) float32 target of one (H, W) instance label image (0 = background)."""
    check_target(target)
    labels = np.asarray(labels)
    channels = [(labels > 0).astype(np.float32)]
    if target == "border":
        channels.append(border_band(labels, border_width).astype(np.float32))
    elif target == "distance":
        channels.append(distance_map(labels))
    return np.stack(channels)


# `${nuclei.target_channels:${data.target.kind}}` in conf/model/*.yaml: the network's output
# channels follow the target.
if not OmegaConf.has_resolver("nuclei.target_channels"):
    OmegaConf.register_new_resolver("nuclei.target_channels", target_channels)
