"""Nucleus measurements: raw intensities of any dtype, channels, pixel size, border, choice."""

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi
from skimage.draw import disk

from nuclei.inference.measure import KNOWN_PROPERTIES, measure_nuclei

SHAPE = (64, 80)
INTENSITY = ("intensity_mean", "intensity_max", "intensity_min", "intensity_integrated")


def two_nuclei() -> np.ndarray:
    """Nucleus 1: a disc inside the image; nucleus 7: a rectangle on the right edge."""
    labels = np.zeros(SHAPE, np.uint32)
    labels[disk((20, 24), 9, shape=SHAPE)] = 1
    labels[40:52, 70:80] = 7
    return labels


def sixteen_bit_image(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Background ~200 counts; nucleus 1 at 3,300 +- 50, nucleus 7 at 12,000 counts."""
    rng = np.random.default_rng(seed)
    image = rng.integers(150, 250, SHAPE).astype(np.uint16)
    inside = labels == 1
    # Noise with an exact mean of 3,300: +50 and -50 on alternating pixels (0 on an odd one).
    offsets = np.resize([50, -50], inside.sum())
    if inside.sum() % 2:
        offsets[-1] = 0
    image[inside] = 3300 + offsets
    image[labels == 7] = 12000
    return image


def test_a_16_bit_nucleus_is_measured_at_its_raw_counts() -> None:
    labels = two_nuclei()
    image = sixteen_bit_image(labels)
    table = measure_nuclei(image, labels).set_index("label")
    area = int((labels == 1).sum())
    assert table.loc[1, "intensity_mean"] == pytest.approx(3300.0)
    assert table.loc[1, "intensity_max"] == 3350 and table.loc[1, "intensity_min"] == 3250
    assert table.loc[1, "intensity_integrated"] == pytest.approx(3300.0 * area)
    assert table.loc[7, "intensity_mean"] == 12000
    assert table.loc[7, "intensity_integrated"] == 12000 * 120
    assert table.loc[1, "area"] == area and table.loc[7, "area"] == 120


def test_float_and_8_bit_images_keep_their_own_values() -> None:
    labels = two_nuclei()
    for image, expected in (
        (np.where(labels == 1, 0.25, 0.0).astype(np.float32), 0.25),
        (np.where(labels == 1, 251, 3).astype(np.uint8), 251.0),
    ):
        table = measure_nuclei(image, labels).set_index("label")
        assert table.loc[1, "intensity_mean"] == pytest.approx(expected)


def test_columns_are_scikit_image_names_label_first() -> None:
    table = measure_nuclei(np.zeros(SHAPE, np.uint16), two_nuclei())
    assert list(table.columns) == [
        "label",
        "area",
        "perimeter",
        "equivalent_diameter_area",
        "axis_major_length",
        "axis_minor_length",
        "orientation",
        "eccentricity",
        "solidity",
        "centroid-0",
        "centroid-1",
        "bbox-0",
        "bbox-1",
        "bbox-2",
        "bbox-3",
        *(f"{name}{suffix}" for name in INTENSITY for suffix in ("", "-0", "-1", "-2")),
        "touches_border",
    ]
    assert list(table["label"]) == [1, 7]
    assert table["area"].dtype == np.int64 and table["bbox-2"].dtype == np.int64


def test_each_channel_is_measured_and_an_alpha_channel_dropped() -> None:
    labels = two_nuclei()
    image = np.zeros((*SHAPE, 4), np.uint16)
    image[..., 0][labels == 1] = 1000
    image[..., 1][labels == 1] = 2000
    image[..., 2][labels == 1] = 3000
    image[..., 3] = 65535  # alpha: opaque
    table = measure_nuclei(image, labels).set_index("label")
    means = [table.loc[1, f"intensity_mean-{c}"] for c in range(3)]
    assert means == [1000, 2000, 3000]
    assert "intensity_mean-3" not in table.columns
    assert table.loc[1, "intensity_integrated-2"] == 3000 * (labels == 1).sum()


def test_a_colour_image_s_plain_columns_are_its_grey_value_the_channels_mean() -> None:
    labels = two_nuclei()
    rng = np.random.default_rng(5)
    image = rng.integers(0, 4096, (*SHAPE, 3)).astype(np.uint16)
    table = measure_nuclei(image, labels, properties=[*INTENSITY, "intensity_std"])
    table = table.set_index("label")
    grey = image.astype(np.float64).mean(axis=2)
    for label in (1, 7):
        row, inside = table.loc[label], labels == label
        assert row["intensity_mean"] == pytest.approx(grey[inside].mean(), rel=1e-12)
        assert row["intensity_max"] == grey[inside].max()
        assert row["intensity_min"] == grey[inside].min()
        assert row["intensity_integrated"] == pytest.approx(grey[inside].sum(), rel=1e-12)
        assert row["intensity_std"] == pytest.approx(grey[inside].std(), rel=1e-9)
        for channel in range(3):
            plane = image[..., channel][inside]
            assert row[f"intensity_mean-{channel}"] == pytest.approx(plane.mean(), rel=1e-12)
            assert row[f"intensity_max-{channel}"] == plane.max()
            assert row[f"intensity_std-{channel}"] == pytest.approx(plane.std(), rel=1e-9)


@pytest.mark.parametrize(
    "form", ["grey", "grey (H, W, 1)", "grey as RGB", "grey as RGBA", "grey float as RGB"]
)
def test_a_grey_image_gives_the_same_table_however_it_is_stored(form: str) -> None:
    labels = two_nuclei()
    grey = sixteen_bit_image(labels)
    reference = measure_nuclei(grey, labels, properties=[*INTENSITY, "intensity_std"])
    image = {
        "grey": grey,
        "grey (H, W, 1)": grey[..., None],
        "grey as RGB": np.dstack([grey] * 3),
        "grey as RGBA": np.dstack([grey] * 3 + [np.full(SHAPE, 65535, np.uint16)]),
        "grey float as RGB": np.dstack([grey.astype(np.float32) / 7] * 3),
    }[form]
    table = measure_nuclei(image, labels, properties=[*INTENSITY, "intensity_std"])
    if form.startswith("grey float"):
        reference = measure_nuclei(
            grey.astype(np.float32) / 7, labels, properties=[*INTENSITY, "intensity_std"]
        )
    pd.testing.assert_frame_equal(table, reference, check_exact=True)
    for name in (*INTENSITY, "intensity_std"):
        for channel in range(3):  # a grey image is its RGB image's three equal channels
            np.testing.assert_array_equal(table[f"{name}-{channel}"], table[name])


def test_pixel_size_adds_micrometre_columns_beside_the_pixel_ones() -> None:
    labels = two_nuclei()
    table = measure_nuclei(np.zeros(SHAPE), labels, pixel_size_um=0.5)
    columns = list(table.columns)
    for pixels, micrometres, factor in (
        ("area", "area_um2", 0.25),
        ("perimeter", "perimeter_um", 0.5),
        ("equivalent_diameter_area", "equivalent_diameter_um", 0.5),
        ("axis_major_length", "axis_major_length_um", 0.5),
        ("axis_minor_length", "axis_minor_length_um", 0.5),
        ("centroid-0", "centroid-0_um", 0.5),
        ("centroid-1", "centroid-1_um", 0.5),
    ):
        assert columns.index(micrometres) == columns.index(pixels) + 1
        np.testing.assert_allclose(table[micrometres], table[pixels] * factor)
    assert table.loc[table["label"] == 7, "area_um2"].item() == pytest.approx(30.0)
    with pytest.raises(ValueError, match="pixel_size_um"):
        measure_nuclei(np.zeros(SHAPE), labels, pixel_size_um=0)


def test_nuclei_on_the_image_edge_are_flagged() -> None:
    labels = two_nuclei()
    labels[0:5, 0:5] = 3  # top-left corner
    labels[60:64, 30:40] = 4  # bottom edge
    table = measure_nuclei(np.zeros(SHAPE), labels).set_index("label")
    assert table["touches_border"].to_dict() == {1: False, 3: True, 4: True, 7: True}


def test_mean_probability_from_a_map_or_its_foreground_channel() -> None:
    labels = two_nuclei()
    foreground = np.where(labels == 1, 0.9, 0.6).astype(np.float32)
    maps = np.stack([foreground, np.zeros(SHAPE, np.float32)])
    for probabilities in (foreground, maps):
        table = measure_nuclei(np.zeros(SHAPE), labels, probabilities=probabilities)
        np.testing.assert_allclose(table["probability_mean"], [0.9, 0.6], rtol=1e-6)
    assert "probability_mean" not in measure_nuclei(np.zeros(SHAPE), labels).columns
    with pytest.raises(ValueError, match="probabilities"):
        measure_nuclei(np.zeros(SHAPE), labels, properties=["probability_mean"])


def test_properties_choose_the_columns_and_unknown_names_are_refused() -> None:
    labels = two_nuclei()
    table = measure_nuclei(np.zeros(SHAPE), labels, properties=["area", "feret_diameter_max"])
    assert list(table.columns) == ["label", "area", "feret_diameter_max"]
    with pytest.raises(ValueError, match="mean_intensity") as refused:
        measure_nuclei(np.zeros(SHAPE), labels, properties=["area", "mean_intensity"])
    assert all(name in str(refused.value) for name in KNOWN_PROPERTIES)


def test_no_nuclei_gives_an_empty_table_with_the_columns() -> None:
    table = measure_nuclei(np.zeros(SHAPE), np.zeros(SHAPE, np.uint32), pixel_size_um=1.0)
    assert isinstance(table, pd.DataFrame) and len(table) == 0
    assert {"label", "centroid-1", "area_um2", "touches_border"} <= set(table.columns)


def test_an_image_of_another_size_is_refused() -> None:
    with pytest.raises(ValueError, match="does not match labels"):
        measure_nuclei(np.zeros((10, 10)), two_nuclei())


def test_sums_and_mean_probability_are_scipys_to_the_last_bit() -> None:
    rng = np.random.default_rng(3)
    labels = ndi.label(rng.random((50, 61)) < 0.55)[0].astype(np.uint32)
    labels[labels == 2] = 70_000  # a label beyond uint16
    image = rng.integers(0, 65_536, size=(50, 61, 2)).astype(np.uint16)
    probabilities = rng.random((2, 50, 61)).astype(np.float32)
    table = measure_nuclei(image, labels, probabilities=probabilities)
    index = table["label"].to_numpy()
    for channel in range(2):
        plane = image[..., channel].astype(np.float64)
        expected = ndi.sum_labels(plane, labels, index=index)
        np.testing.assert_array_equal(table[f"intensity_integrated-{channel}"], expected)
    expected = ndi.mean(probabilities[0].astype(np.float64), labels, index=index)
    np.testing.assert_array_equal(table["probability_mean"], expected)
