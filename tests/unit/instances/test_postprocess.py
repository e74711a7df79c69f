"""Tests for probability -> instance postprocessing (nuclei.instances.postprocess)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.measure import label
from skimage.segmentation import relabel_sequential

from nuclei.instances.postprocess import (
    SPLIT_METHODS,
    PostprocessConfig,
    binarize,
    fill_holes,
    instances_from_probability,
)

YY, XX = np.mgrid[:64, :96]


def disc(cy: float, cx: float, r: float) -> np.ndarray:
    """Boolean disc on the 64 x 96 test canvas."""
    return (YY - cy) ** 2 + (XX - cx) ** 2 <= r * r


def prob_of(mask: np.ndarray, fg: float = 0.9, bg: float = 0.1) -> np.ndarray:
    """A probability map that is ``fg`` on ``mask`` and ``bg`` elsewhere."""
    return np.where(mask, fg, bg).astype(np.float32)


def n_labels(labels: np.ndarray) -> int:
    return len(np.unique(labels[labels > 0]))


def test_binarize_is_strict() -> None:
    prob = np.array([[0.2, 0.5, 0.50001], [0.0, 1.0, 0.7]])
    np.testing.assert_array_equal(binarize(prob), [[False, False, True], [False, True, True]])
    np.testing.assert_array_equal(binarize(prob, 0.6), [[False, False, False], [False, True, True]])
    assert binarize(prob).dtype == bool


def test_threshold_is_applied() -> None:
    prob = np.where(disc(20, 20, 8), 0.6, 0.0) + np.where(disc(20, 60, 8), 0.4, 0.0)
    assert n_labels(instances_from_probability(prob)) == 1
    assert n_labels(instances_from_probability(prob, PostprocessConfig(threshold=0.3))) == 2


def test_two_separate_discs() -> None:
    labels = instances_from_probability(prob_of(disc(20, 20, 8) | disc(40, 60, 10)))
    assert labels.dtype == np.int32 and labels.shape == (64, 96)
    np.testing.assert_array_equal(np.unique(labels), [0, 1, 2])
    assert (labels[20, 20], labels[40, 60]) == (1, 2)


def test_small_objects_removed_at_min_area() -> None:
    mask = disc(30, 30, 8)
    mask[5:8, 70:73] = True  # 9 pixels
    assert n_labels(instances_from_probability(prob_of(mask))) == 1  # default min_area 10
    assert n_labels(instances_from_probability(prob_of(mask), PostprocessConfig(min_area=9))) == 2
    assert n_labels(instances_from_probability(prob_of(mask), PostprocessConfig(min_area=0))) == 2


def test_holes_filled() -> None:
    ring = disc(30, 40, 12) & ~disc(30, 40, 4)
    filled = instances_from_probability(prob_of(ring))
    assert (filled > 0).sum() == disc(30, 40, 12).sum()
    assert filled[30, 40] == 1
    kept = instances_from_probability(prob_of(ring), PostprocessConfig(fill_holes=False))
    assert kept[30, 40] == 0 and (kept > 0).sum() == ring.sum()


def test_touching_discs_split_only_by_watershed() -> None:
    mask = disc(32, 40, 10) | disc(32, 56, 10)  # centres 16 px apart, radius 10: overlap
    prob = prob_of(mask)
    merged = instances_from_probability(prob, PostprocessConfig(split="none"))
    assert n_labels(merged) == 1
    split = instances_from_probability(prob, PostprocessConfig(split="watershed"))
    np.testing.assert_array_equal(np.unique(split), [0, 1, 2])
    assert (split > 0).sum() == mask.sum()  # splitting keeps every pixel
    assert split[32, 40] != split[32, 56]
    sizes = np.bincount(split.ravel())[1:]
    assert abs(int(sizes[0]) - int(sizes[1])) <= 0.1 * sizes.sum()


def test_watershed_splits_touching_discs_at_the_border() -> None:
    # Centres on the image edge: peaks there must still become markers.
    mask = disc(0, 40, 10) | disc(0, 56, 10)
    split = instances_from_probability(prob_of(mask), PostprocessConfig(split="watershed"))
    assert n_labels(split) == 2


def test_watershed_keeps_elongated_nucleus_whole() -> None:
    ellipse = ((YY - 30) / 6) ** 2 + ((XX - 45) / 25) ** 2 <= 1
    cfg = PostprocessConfig(split="watershed")
    assert n_labels(instances_from_probability(prob_of(ellipse), cfg)) == 1
    # Raw peak_local_max markers (h = 0) cut the flat ridge into pieces: why h exists.
    cfg_raw = PostprocessConfig(split="watershed", h=0.0)
    assert n_labels(instances_from_probability(prob_of(ellipse), cfg_raw)) > 1


def test_watershed_keeps_component_without_marker() -> None:
    # The small square's distance peak (2) lies within min_distance of the big disc's
    # higher interior, so it gets no marker; it must survive as its own object.
    mask = disc(30, 30, 10)
    mask[28:32, 41:45] = True
    mask[:, 41] = False  # a 1 px gap to the disc
    cfg = PostprocessConfig(split="watershed", min_distance=6, min_area=4)
    labels = instances_from_probability(prob_of(mask), cfg)
    assert n_labels(labels) == 2
    assert (labels > 0).sum() == mask.sum()


def test_connectivity_of_diagonal_contact() -> None:
    mask = np.zeros((64, 96), dtype=bool)
    mask[10:20, 10:20] = True
    mask[20:30, 20:30] = True  # touches the first square only at a corner
    prob = prob_of(mask)
    assert n_labels(instances_from_probability(prob)) == 2  # default 4-connectivity
    assert n_labels(instances_from_probability(prob, PostprocessConfig(connectivity=2))) == 1


@pytest.mark.parametrize("split", SPLIT_METHODS)
def test_labels_are_consecutive(split: str) -> None:
    rng = np.random.default_rng(0)
    mask = np.zeros((64, 96), dtype=bool)
    for _ in range(25):
        mask |= disc(rng.integers(0, 64), rng.integers(0, 96), rng.uniform(1, 7))
    labels = instances_from_probability(prob_of(mask), PostprocessConfig(split=split))
    n = int(labels.max())
    assert n > 3
    np.testing.assert_array_equal(np.unique(labels), np.arange(n + 1))
    assert np.bincount(labels.ravel())[1:].min() >= 10


def test_components_keep_scikit_images_order_once_small_ones_are_dropped() -> None:
    rng = np.random.default_rng(1)
    mask = np.zeros((64, 96), dtype=bool)
    for _ in range(30):
        mask |= disc(rng.integers(0, 64), rng.integers(0, 96), rng.uniform(0.5, 5))
    components = label(mask, connectivity=1)
    areas = ndi.sum_labels(mask, components, np.arange(components.max() + 1))
    components[areas[components] < 10] = 0
    expected, _, _ = relabel_sequential(components)
    got = instances_from_probability(prob_of(mask), PostprocessConfig(split="none"))
    assert (areas[1:] < 10).any() and got.max() > 5
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("split", SPLIT_METHODS)
def test_empty_and_full_probability(split: str) -> None:
    cfg = PostprocessConfig(split=split)
    empty = instances_from_probability(np.zeros((16, 16)), cfg)
    assert empty.dtype == np.int32 and not empty.any()
    full = instances_from_probability(np.ones((16, 16)), cfg)
    assert n_labels(full) == 1 and full.all()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"'none', 'watershed'.*'otsu'"):
        PostprocessConfig(split="otsu")
    with pytest.raises(ValueError, match="threshold"):
        PostprocessConfig(threshold=1.5)
    with pytest.raises(ValueError, match="min_area"):
        PostprocessConfig(min_area=-1)
    with pytest.raises(ValueError, match="min_distance"):
        PostprocessConfig(min_distance=0)
    with pytest.raises(ValueError, match="connectivity"):
        PostprocessConfig(connectivity=3)
    with pytest.raises(ValueError, match=r"\(2, 8, 8\)"):
        instances_from_probability(np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match=r"\(8,\)"):
        binarize(np.zeros(8))


@pytest.mark.parametrize("connectivity", [1, 2])
@pytest.mark.parametrize("seed", range(4))
def test_fill_holes_is_scipys_with_the_complementary_connectivity(
    connectivity: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    mask = rng.random((40, 57)) < rng.uniform(0.4, 0.7)  # many holes, some at the edge
    structure = ndi.generate_binary_structure(2, 3 - connectivity)
    expected = ndi.binary_fill_holes(mask, structure=structure)
    filled = fill_holes(mask, connectivity)
    np.testing.assert_array_equal(filled, expected)
    assert (filled & ~mask).any()  # the case holds holes to fill
