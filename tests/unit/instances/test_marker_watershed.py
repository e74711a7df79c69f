"""Marker-controlled watershed from foreground + border maps (nuclei.instances.postprocess)."""

from __future__ import annotations

import numpy as np
import pytest

from nuclei.data.targets import make_target
from nuclei.instances.postprocess import PostprocessConfig, instances_from_maps, resolve_split
from nuclei.metrics.dsb import image_scores

YY, XX = np.mgrid[:48, :64]


def disc(cy: float, cx: float, r: float) -> np.ndarray:
    return (YY - cy) ** 2 + (XX - cx) ** 2 <= r * r


def two_touching_discs() -> np.ndarray:
    """Two discs of radius 9 whose centres are 16 px apart: they share a 2-column contact."""
    labels = np.zeros(YY.shape, np.int32)
    labels[disc(24, 20, 9)] = 1
    labels[disc(24, 36, 9) & (labels == 0)] = 2
    return labels


def predicted_maps(labels: np.ndarray) -> np.ndarray:
    """What a well-trained border model outputs: soft foreground and border maps."""
    target = make_target(labels, "border")
    return np.clip(0.05 + 0.9 * target, 0.0, 1.0).astype(np.float32)


def n_labels(labels: np.ndarray) -> int:
    return len(np.unique(labels[labels > 0]))


def test_marker_watershed_separates_two_touching_discs() -> None:
    truth = two_touching_discs()
    maps = predicted_maps(truth)
    assert n_labels(instances_from_maps(maps, PostprocessConfig(split="none"), "border")) == 1
    split = instances_from_maps(maps, PostprocessConfig(split="markers"), "border")
    assert n_labels(split) == 2
    scores = image_scores(truth, split)
    assert scores["tp"] == 2 and scores["n_merged"] == 0 and scores["map"] > 0.9
    # auto: markers for a border model, connected components for a binary one.
    assert n_labels(instances_from_maps(maps, PostprocessConfig(), "border")) == 2
    assert n_labels(instances_from_maps(maps[:1], PostprocessConfig(), "binary")) == 1
    assert (
        resolve_split("auto", "border") == "markers" and resolve_split("auto", "binary") == "none"
    )


@pytest.mark.parametrize("flood", ["probability", "distance"])
def test_flood_surfaces_and_orphans(flood: str) -> None:
    truth = two_touching_discs()
    truth[disc(8, 56, 3)] = 3  # a small lone nucleus
    maps = predicted_maps(truth)
    maps[1][truth == 3] = 0.9  # predicted all border: no marker, kept as its own component
    labels = instances_from_maps(maps, PostprocessConfig(split="markers", flood=flood), "border")
    assert n_labels(labels) == 3
    np.testing.assert_array_equal(np.unique(labels), np.arange(4))  # consecutive labels


def test_distance_target_seeds_markers_from_its_peaks() -> None:
    truth = two_touching_discs()
    target = make_target(truth, "distance")
    labels = instances_from_maps(target, PostprocessConfig(split="markers"), "distance")
    assert n_labels(labels) == 2


def test_marker_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="border_threshold"):
        PostprocessConfig(border_threshold=2.0)
    with pytest.raises(ValueError, match="flood"):
        PostprocessConfig(flood="height")
    with pytest.raises(ValueError, match="min_marker_area"):
        PostprocessConfig(min_marker_area=0)
