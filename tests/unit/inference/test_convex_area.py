"""convex_areas equals scikit-image's regionprops area_convex exactly, on many shapes."""

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.draw import disk, ellipse, line
from skimage.measure import regionprops

from nuclei.inference.convex_area import convex_areas

SEED = 20240611


def skimage_areas(labels: np.ndarray) -> np.ndarray:
    """The reference: regionprops' area_convex, in ascending label order."""
    return np.array([int(region.area_convex) for region in regionprops(labels)], dtype=np.int64)


def assert_matches(labels: np.ndarray) -> int:
    """Exact equality with skimage on every region of ``labels``; the number of regions."""
    expected = skimage_areas(labels)
    got = convex_areas(labels, ndi.find_objects(labels))
    assert got.dtype == np.int64
    mismatched = np.flatnonzero(got != expected)
    assert mismatched.size == 0, (
        f"labels {mismatched + 1}: got {got[mismatched]}, skimage {expected[mismatched]}"
    )
    return len(expected)


def blobs(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Thresholded smoothed noise, labelled (4-connected), touching each other and borders."""
    noise = ndi.gaussian_filter(rng.standard_normal(shape), sigma)
    labels, _ = ndi.label(noise > rng.uniform(0.0, 0.5) * noise.std())
    return labels.astype(np.int32)


def ellipses(rng: np.random.Generator, count: int, cell: int = 40) -> np.ndarray:
    """Discs and ellipses at random sub-pixel centres and angles, one per grid cell."""
    side = int(np.ceil(np.sqrt(count)))
    labels = np.zeros((side * cell, side * cell), np.uint16)
    for index in range(count):
        top, left = divmod(index, side)
        centre = np.array([top, left]) * cell + cell / 2 + rng.uniform(-3, 3, size=2)
        radii = rng.uniform(0.5, cell / 2 - 4, size=2)
        if index % 4 == 0:
            labels[disk(centre, radii[0])] = index + 1
        else:
            angle = rng.uniform(-np.pi, np.pi)
            rows, cols = ellipse(*centre, *radii, shape=labels.shape, rotation=angle)
            labels[rows, cols] = index + 1
    return labels


def test_random_blobs_match_skimage():
    rng = np.random.default_rng(SEED)
    regions = sum(assert_matches(blobs(rng, (96, 128), sigma)) for sigma in (1.0, 2.0, 3.5, 6.0))
    assert regions > 150


def test_discs_and_ellipses_match_skimage():
    rng = np.random.default_rng(SEED + 1)
    assert assert_matches(ellipses(rng, 200)) == 200


def test_pixels_lines_and_l_shapes_match_skimage():
    labels = np.zeros((60, 90), np.int64)
    labels[2, 2] = 1  # single pixels, one in a corner
    labels[0, 89] = 2
    labels[5, 10:30] = 3  # horizontal, vertical, diagonal and sloped one-pixel lines
    labels[8:40, 5] = 4
    labels[line(10, 10, 30, 30)] = 5
    labels[line(30, 40, 12, 45)] = 6
    labels[line(40, 10, 44, 50)] = 7
    labels[50:58, 60] = 8  # L shapes, one of them 1 pixel thick
    labels[57, 60:75] = 8
    labels[45:55, 80:84] = 9
    labels[51:55, 70:89] = 9
    labels[59, :] = 10  # a full-width line on the bottom border
    labels[10:12, 60:62] = 11  # a 2x2 square and a 1x2 domino
    labels[15, 60:62] = 12
    assert assert_matches(labels) == 12


def test_holes_crescents_touching_and_split_regions_match_skimage():
    rng = np.random.default_rng(SEED + 2)
    labels = np.zeros((120, 160), np.uint32)
    for index in range(12):
        centre = (rng.uniform(12, 108), 10 + index * 12.5 + rng.uniform(-1, 1))
        radius = rng.uniform(4, 9)
        labels[disk(centre, radius, shape=labels.shape)] = index + 1
        hole = (centre[0] + rng.uniform(-2, 2), centre[1] + rng.uniform(-4, 4))
        mask = np.zeros(labels.shape, bool)
        mask[disk(hole, radius * rng.uniform(0.4, 0.95), shape=labels.shape)] = True
        labels[mask & (labels == index + 1)] = 0  # a ring or a concave crescent
    labels[:15, :20] = 13  # a rectangle in the corner, touched by the next one
    labels[15:30, :8] = 14
    labels[100:120, 140:160] = 15  # one label in two separate pieces
    labels[90:95, 120:125] = 15
    assert assert_matches(labels) == 15


def test_large_and_border_touching_objects_match_skimage():
    rng = np.random.default_rng(SEED + 3)
    labels = np.zeros((340, 340), np.int32)
    labels[ellipse(170.3, 169.6, 150, 120, shape=labels.shape, rotation=0.4)] = 1
    labels[disk((-3.2, 200.5), 20.7, shape=labels.shape)] = 2  # cut by the top border
    labels[disk((200.1, 345.0), 15.2, shape=labels.shape)] = 3  # cut by the right border
    big_blob = blobs(rng, (340, 340), 25.0)
    assert assert_matches(labels) == 3
    assert assert_matches(big_blob) > 0


def test_boxes_default_to_find_objects_and_absent_labels_are_skipped():
    labels = np.zeros((20, 20), np.uint8)
    labels[2:5, 2:9] = 2
    labels[line(10, 1, 18, 15)] = 5
    expected = skimage_areas(labels)
    np.testing.assert_array_equal(convex_areas(labels), expected)
    np.testing.assert_array_equal(convex_areas(labels, ndi.find_objects(labels)), expected)
    assert convex_areas(np.zeros((4, 4), np.int32)).shape == (0,)
    assert convex_areas(np.zeros((0, 5), np.int32)).shape == (0,)


def test_bad_input_is_rejected():
    labels = np.zeros((10, 10), np.int32)
    labels[2:4, 2:4] = 1
    labels[6:8, 6:8] = 3
    with pytest.raises(ValueError, match="2-D"):
        convex_areas(labels[None])
    with pytest.raises(ValueError, match="integer dtype"):
        convex_areas(labels.astype(float))
    with pytest.raises(ValueError, match="integer dtype"):
        convex_areas(labels > 0)
    with pytest.raises(ValueError, match="label 3 is not one of the 2"):
        convex_areas(labels, ndi.find_objects(labels)[:2])
    with pytest.raises(ValueError, match="boxes do not match labels: label 2"):
        convex_areas(labels, [*ndi.find_objects(labels)[:1], (slice(0, 1), slice(0, 1)), None])
    negative = labels.copy()
    negative[0, 0] = -1
    with pytest.raises(ValueError, match="label -1"):
        convex_areas(negative, ndi.find_objects(labels))
