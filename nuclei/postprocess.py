"""Turn a foreground-probability map into an instance label image.

Pipeline: threshold -> fill holes -> connected components -> drop small objects ->
optional distance-transform watershed to split touching nuclei -> drop small fragments ->
sequential relabel (0 background, 1..N).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.measure import label
from skimage.morphology import h_maxima
from skimage.segmentation import relabel_sequential, watershed

__all__ = ["SPLIT_METHODS", "PostprocessConfig", "binarize", "instances_from_probability"]

#: Allowed values of ``PostprocessConfig.split``.
SPLIT_METHODS: tuple[str, ...] = ("none", "watershed")


@dataclass
class PostprocessConfig:
    """Settings for :func:`instances_from_probability`.

    Attributes:
        threshold: a pixel is foreground when its probability is strictly greater than this.
        min_area: objects (and watershed fragments) with fewer pixels than this are removed.
        fill_holes: fill background regions enclosed by foreground before labelling.
        split: ``"none"`` (connected components only) or ``"watershed"`` (split touching
            nuclei along the necks of the distance transform).
        min_distance: watershed only; minimum spacing in pixels between two markers (peaks
            of the distance transform). Larger values split less.
        h: watershed only; a distance-transform peak becomes a marker only if it rises at
            least ``h`` pixels above the saddle joining it to a higher peak (h-maxima).
            Keeps the flat or slowly falling ridge of an elongated nucleus from being cut
            into several pieces. ``0`` uses the raw peaks of ``peak_local_max``.
        compactness: watershed only; ``skimage.segmentation.watershed`` compactness
            (0 = classic watershed, larger = more regularly shaped regions).
        connectivity: pixel connectivity of an object, 1 (4-neighbour) or 2 (8-neighbour).
            The default 1 keeps two nuclei that touch only at a corner apart; a
            thresholded nucleus is almost always 4-connected by itself.
    """

    threshold: float = 0.5
    min_area: int = 10
    fill_holes: bool = True
    split: str = "none"
    min_distance: int = 3
    h: float = 1.0
    compactness: float = 0.0
    connectivity: int = 1

    def __post_init__(self) -> None:
        if self.split not in SPLIT_METHODS:
            raise ValueError(f"split must be one of {SPLIT_METHODS}, got {self.split!r}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        if self.min_area < 0:
            raise ValueError(f"min_area must be >= 0, got {self.min_area}")
        if self.min_distance < 1:
            raise ValueError(f"min_distance must be >= 1, got {self.min_distance}")
        if self.h < 0:
            raise ValueError(f"h must be >= 0, got {self.h}")
        if self.compactness < 0:
            raise ValueError(f"compactness must be >= 0, got {self.compactness}")
        if self.connectivity not in (1, 2):
            raise ValueError(f"connectivity must be 1 or 2, got {self.connectivity}")


def _check_2d(prob: np.ndarray) -> np.ndarray:
    arr = np.asarray(prob)
    if arr.ndim != 2:
        raise ValueError(f"prob must be a 2-D (H, W) array, got shape {arr.shape}")
    return arr


def binarize(prob: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Boolean foreground mask ``prob > threshold`` of a 2-D probability map."""
    return _check_2d(prob) > threshold


def _remove_small(labels: np.ndarray, min_area: int) -> np.ndarray:
    """Set labels with fewer than ``min_area`` pixels to 0 (in place) and return them."""
    if min_area > 1 and labels.any():
        small = np.bincount(labels.ravel()) < min_area
        small[0] = False
        labels[small[labels]] = 0
    return labels


def _watershed_split(components: np.ndarray, config: PostprocessConfig) -> np.ndarray:
    """Split each connected component along the necks of its distance transform."""
    mask = components > 0
    distance = ndi.distance_transform_edt(mask)
    # exclude_border=False: nuclei cut by the image border still need a marker.
    # labels=components would keep peaks of neighbouring components from suppressing each
    # other but costs ~10x more (a loop over objects); a component that loses all its peaks
    # that way is caught by the orphan rule below.
    peaks = peak_local_max(
        distance, min_distance=config.min_distance, threshold_abs=0.0, exclude_border=False
    )
    peak_mask = np.zeros(mask.shape, dtype=bool)
    peak_mask[tuple(peaks.T)] = True
    if config.h > 0:
        # One marker per h-maximum region that holds a surviving peak: all peaks on one
        # plateau or shallow ridge collapse into a single marker.
        regions = label(h_maxima(distance, config.h), connectivity=2)
        keep = np.zeros(int(regions.max()) + 1, dtype=bool)
        keep[regions[peak_mask]] = True
        keep[0] = False
        markers = np.where(keep[regions], regions, 0)
    else:
        markers = label(peak_mask, connectivity=2)
    split = watershed(
        -distance,
        markers,
        mask=mask,
        connectivity=config.connectivity,
        compactness=config.compactness,
    )
    # A component that received no marker (a peak suppressed by a higher one within
    # min_distance across a thin gap, or a distance peak lower than h) keeps its
    # connected-component label instead of vanishing.
    orphan = mask & (split == 0)
    if orphan.any():
        split[orphan] = components[orphan] + split.max()
    return split


def instances_from_probability(
    prob: np.ndarray, config: PostprocessConfig | None = None
) -> np.ndarray:
    """Instance labels (H, W) int32, 0 background and 1..N, from an (H, W) probability map."""
    config = config or PostprocessConfig()
    mask = binarize(prob, config.threshold)
    if config.fill_holes:
        # A hole is background not connected to the image border under the connectivity
        # complementary to the objects' (4-connected objects <-> 8-connected background).
        background_conn = 3 - config.connectivity
        structure = ndi.generate_binary_structure(2, background_conn)
        mask = ndi.binary_fill_holes(mask, structure=structure)
    labels = label(mask, connectivity=config.connectivity)
    labels = _remove_small(labels, config.min_area)
    if config.split == "watershed" and labels.any():
        labels = _remove_small(_watershed_split(labels, config), config.min_area)
    relabelled, _, _ = relabel_sequential(labels)
    return relabelled.astype(np.int32, copy=False)
