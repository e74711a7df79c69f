"""Every nucleus measured at once gives scikit-image's regionprops values, shape by shape."""

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.draw import disk, ellipse, line
from skimage.measure import regionprops_table

from nuclei.inference.label_statistics import (
    INTENSITY_PROPERTIES,
    SHAPE_PROPERTIES,
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
