"""Every nucleus measured at once gives scikit-image's regionprops values, shape by shape.

convex_areas equals scikit-image's regionprops area_convex exactly, on many shapes."""

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.draw import disk, ellipse, line
from skimage.measure import regionprops, regionprops_table

from nuclei.inference.label_statistics import (
    INTENSITY_PROPERTIES,
    SHAPE_PROPERTIES,
    convex_areas,
    label_statistics,
)

EQUAL = ("label", "area", "bbox", "centroid", "equivalent_diameter_area", "area_convex", "solidity")
MOMENTS = ("axis_major_length", "axis_minor_length", "eccentricity")
PERIMETER = "perimeter"
SKIMAGE_INTENSITY = ("intensity_mean", "intensity_max", "intensity_min")


def blobs(seed: int, shape: tuple[int, int] = (120, 150)) -> np.ndarray:
    """Touching random blobs, some on the image's edge, renumbered with gaps and a large label."""
    rng = np.random.default_rng(seed)
    smooth = ndi.gaussian_filter(rng.random(shape), 3)
    labels = ndi.label(smooth > np.quantile(smooth, 0.55))[0]
    split = ndi.gaussian_filter(rng.random(shape), 2) > 0.5  # cuts blobs into touching parts
    labels = np.where(split & (labels > 0), labels + labels.max(), labels)
    labels = np.unique(labels, return_inverse=True)[1].reshape(shape) * 3  # gaps: 3, 6, 9...
    labels[labels == 6] = 70_000
    return labels.astype(np.int32)


def drawn_shapes() -> np.ndarray:
    """Discs, ellipses at angles, single pixels, lines in four directions, an L, a ring."""
    shape = (200, 220)
    labels = np.zeros(shape, np.uint16)
    drawings = [
        disk((20, 20), 9, shape=shape),
        disk((20.5, 60.5), 7.3, shape=shape),
        ellipse(60, 30, 6, 16, shape=shape, rotation=0.7),
        ellipse(60, 90, 4, 12, shape=shape, rotation=-1.2),
        ellipse(110, 40, 12, 5, shape=shape, rotation=np.pi / 2),
        (np.array([150]), np.array([10])),
        (np.array([0]), np.array([219])),
        line(150, 30, 150, 70),
        line(120, 100, 190, 100),
        line(100, 120, 160, 180),
        line(190, 120, 130, 180),
    ]
    for number, (rows, columns) in enumerate(drawings, start=1):
        labels[rows, columns] = number
    labels[10:40, 150:156] = 20  # an L
    labels[34:40, 156:190] = 20
    ring = np.zeros(shape, bool)
    ring[disk((100, 180), 15, shape=shape)] = True
    ring[disk((100, 180), 8, shape=shape)] = False
    labels[ring] = 21
    return labels


def skimage_columns(labels: np.ndarray, image: np.ndarray) -> dict[str, np.ndarray]:
    properties = [*EQUAL, *MOMENTS, PERIMETER, "orientation", *SKIMAGE_INTENSITY]
    return regionprops_table(labels, intensity_image=image, properties=properties)


def assert_as_skimage(labels: np.ndarray, image: np.ndarray) -> dict[str, np.ndarray]:
    ours = label_statistics(labels, SHAPE_PROPERTIES + INTENSITY_PROPERTIES, image)
    theirs = skimage_columns(labels, image)
    for name, expected in theirs.items():
        got, prop = ours[name], name.split("-")[0]
        if prop == PERIMETER:  # the same weights, summed in another order
            np.testing.assert_allclose(got, expected, rtol=1e-12, err_msg=name)
        elif prop in MOMENTS:
            np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-5, err_msg=name)
        elif prop == "orientation":
            turn = (got - expected + np.pi / 2) % np.pi - np.pi / 2  # the same axis
            assert np.abs(turn).max() < 1e-9
        elif prop in EQUAL or image.dtype.kind in "iu":
            np.testing.assert_array_equal(got, expected, err_msg=name)
        else:  # float images: scikit-image sums float32 in float32
            np.testing.assert_allclose(got, expected, rtol=1e-6, err_msg=name)
    return ours


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_blobs_on_an_rgb_image_measure_as_regionprops(seed: int) -> None:
    labels = blobs(seed)
    rng = np.random.default_rng(seed + 10)
    image = rng.integers(0, 256, (*labels.shape, 3), dtype=np.uint8)
    ours = assert_as_skimage(labels, image)
    assert len(ours["label"]) > 20 and 70_000 in ours["label"]


def test_drawn_shapes_on_16_bit_signed_and_float_images_measure_as_regionprops() -> None:
    labels = drawn_shapes()
    rng = np.random.default_rng(4)
    for image in (
        rng.integers(0, 65_536, labels.shape).astype(np.uint16),
        rng.integers(-30_000, 30_000, labels.shape).astype(np.int16),
        rng.normal(100.0, 30.0, labels.shape).astype(np.float32),
    ):
        assert_as_skimage(labels, image)


def test_discs_centred_on_a_pixel_or_a_corner_get_scikit_images_isotropic_orientation() -> None:
    labels = np.zeros((40, 40), np.int32)
    labels[disk((20, 20), 9)] = 1
    labels[disk((10.5, 31.5), 4.5)] = 2
    ours = label_statistics(labels, ("orientation", "eccentricity"))
    np.testing.assert_array_equal(ours["orientation"], [-np.pi / 4, -np.pi / 4])
    np.testing.assert_array_equal(ours["eccentricity"], [0.0, 0.0])
    theirs = regionprops_table(labels, properties=["orientation"])
    np.testing.assert_array_equal(theirs["orientation"], [-np.pi / 4, -np.pi / 4])


def test_integrated_intensity_and_mean_probability_are_scipys_to_the_last_bit() -> None:
    labels = blobs(5)
    rng = np.random.default_rng(6)
    image = rng.normal(500.0, 90.0, labels.shape).astype(np.float32)
    foreground = rng.random(labels.shape).astype(np.float32)
    ours = label_statistics(labels, ("intensity_integrated", "probability_mean"), image, foreground)
    index = ours["label"]
    np.testing.assert_array_equal(
        ours["intensity_integrated"], ndi.sum_labels(image.astype(np.float64), labels, index)
    )
    np.testing.assert_array_equal(
        ours["probability_mean"], ndi.mean(foreground.astype(np.float64), labels, index)
    )


def test_no_nuclei_gives_empty_columns_and_intensities_need_an_image() -> None:
    labels = np.zeros((8, 9), np.uint8)
    ours = label_statistics(labels, SHAPE_PROPERTIES + INTENSITY_PROPERTIES, np.ones((8, 9, 2)))
    assert {"bbox-3", "centroid-1", "orientation", "intensity_mean-1"} <= set(ours)
    assert all(len(column) == 0 for column in ours.values())
    with pytest.raises(ValueError, match="need an image"):
        label_statistics(labels, ("intensity_max",))


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


def smooth_blobs(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
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
    regions = sum(
        assert_matches(smooth_blobs(rng, (96, 128), sigma)) for sigma in (1.0, 2.0, 3.5, 6.0)
    )
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
    big_blob = smooth_blobs(rng, (340, 340), 25.0)
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
