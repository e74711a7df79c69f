"""The postprocessing settings, :class:`PostprocessConfig`, apart from the code that applies
them (:mod:`nuclei.instances.postprocess`, which exports it too): composing a command's
config, also only to show its ``--help``, needs the class but not scipy or scikit-image.
"""

from __future__ import annotations

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore

#: Allowed values of ``PostprocessConfig.split``.
SPLIT_METHODS: tuple[str, ...] = ("none", "watershed", "markers", "auto")
#: Allowed values of ``PostprocessConfig.flood``.
FLOOD_SURFACES: tuple[str, ...] = ("probability", "distance")
#: Targets whose second channel seeds ``split="markers"``.
MARKER_TARGETS: tuple[str, ...] = ("border", "distance")


@dataclass
class PostprocessConfig:
    """Settings for :func:`instances_from_probability`.

    Attributes:
        threshold: a pixel is foreground when its probability is strictly greater than this.
        min_area: objects (and watershed fragments) with fewer pixels than this are removed.
        fill_holes: fill background regions enclosed by foreground before labelling.
        split: ``"none"`` (connected components only), ``"watershed"`` (split touching
            nuclei along the necks of the distance transform), ``"markers"`` (marker-controlled
            watershed seeded from a border or distance channel) or ``"auto"`` (``markers``
            when the model predicts such a channel, else ``none``).
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
        marker_threshold: markers only; a marker pixel has foreground probability above this.
        border_threshold: markers only (border target); a marker pixel has border
            probability below this.
        distance_threshold: markers only (distance target); a marker pixel has predicted
            normalised distance above this.
        min_marker_area: markers only; markers with fewer pixels are ignored (noise).
        flood: markers only; the surface the markers flood: ``"probability"`` (the
            foreground probability, times ``1 - border`` for a border model, or the
            predicted distance for a distance model) or ``"distance"`` (the distance
            transform of the thresholded mask).
    """

    threshold: float = 0.5
    min_area: int = 10
    fill_holes: bool = True
    split: str = "auto"
    min_distance: int = 3
    h: float = 1.0
    compactness: float = 0.0
    connectivity: int = 1
    marker_threshold: float = 0.5
    border_threshold: float = 0.15
    distance_threshold: float = 0.5
    min_marker_area: int = 2
    flood: str = "probability"

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
        for name in ("marker_threshold", "border_threshold", "distance_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.min_marker_area < 1:
            raise ValueError(f"min_marker_area must be >= 1, got {self.min_marker_area}")
        if self.flood not in FLOOD_SURFACES:
            raise ValueError(f"flood must be one of {FLOOD_SURFACES}, got {self.flood!r}")


def register_postprocess_config() -> None:
    """Store :class:`PostprocessConfig` and its defaults as the config ``postprocess/default``."""
    ConfigStore.instance().store(group="postprocess", name="default", node=PostprocessConfig)
