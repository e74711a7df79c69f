"""Intensity normalisation: /255 or per-channel percentiles, the same for 8-bit, 16-bit and
float copies of one picture."""

import numpy as np
import pytest

from nuclei.data.config import IntensityConfig
from nuclei.data.intensity import channel_percentiles, normalize_image

PERCENTILE = IntensityConfig(normalize="percentile")


def textured_image(seed: int = 0) -> np.ndarray:
    """A uint8 (H, W, 3) image with a different range in each channel, dim and bright."""
    rng = np.random.default_rng(seed)
    image = np.empty((40, 50, 3), np.uint8)
    image[..., 0] = rng.integers(10, 60, (40, 50))  # dim
    image[..., 1] = rng.integers(0, 256, (40, 50))  # full range
    image[..., 2] = rng.integers(100, 140, (40, 50))  # bright, low contrast
    return image


def test_percentile_result_is_the_same_for_8_bit_16_bit_and_float_copies() -> None:
    x = textured_image()
    expected = normalize_image(x, PERCENTILE)
    assert expected.dtype == np.float32 and expected.shape == x.shape
    copies = {
        "uint16": x.astype(np.uint16) * 257,
        "float32": x.astype(np.float32) / 255,
        "float64": x / 255.0,
    }
    for name, copy in copies.items():
        np.testing.assert_allclose(
            normalize_image(copy, PERCENTILE), expected, atol=1e-6, err_msg=name
        )


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32])
def test_channel_percentiles_equal_numpys(dtype: type) -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 200, (37, 23, 2)).astype(dtype) * (300 if dtype == np.uint16 else 1)
    for low, high in [(1.0, 99.8), (0.0, 100.0), (33.3, 50.0)]:
        expected = [np.percentile(image[..., c], [low, high]) for c in range(2)]
        np.testing.assert_allclose(
            channel_percentiles(image, low, high), np.transpose(expected), rtol=1e-12
        )


def test_percentiles_map_to_0_and_1_per_channel() -> None:
    # 101 pixels valued 0..100: the q-th percentile is exactly q
    ramp = np.arange(101, dtype=np.float64).reshape(101, 1)
    image = np.concatenate([ramp, 2 * ramp + 50, 100 - ramp], axis=1)[:, None, :]
    out = normalize_image(image.astype(np.uint16), IntensityConfig("percentile", 10, 60))[:, 0]
    expected = np.clip((np.arange(101) - 10) / 50, 0, 1)
    np.testing.assert_allclose(out[:, 0], expected, atol=1e-7)
    np.testing.assert_allclose(out[:, 1], expected, atol=1e-7)  # each channel on its own scale
    np.testing.assert_allclose(out[:, 2], expected[::-1], atol=1e-7)
    assert out[10, 0] == 0.0 and out[35, 0] == 0.5 and out[60, 0] == 1.0


def test_default_percentiles_stretch_a_dim_image_to_the_full_range() -> None:
    dim = textured_image()[..., :1].repeat(3, axis=-1)  # values 10..59 of 255
    out = normalize_image(dim, PERCENTILE)
    assert out.min() == 0.0 and out.max() == 1.0  # clipped to [0, 1]
    assert 0.005 < (out == 0).mean() < 0.05  # the darkest ~1% (ties included) at 0
    assert np.percentile(out, 50) == pytest.approx(0.5, abs=0.1)


def test_none_is_exactly_uint8_over_255_and_passes_float_in_0_1() -> None:
    x = textured_image()
    config = IntensityConfig()
    assert config.normalize == "none"
    out = normalize_image(x, config)
    assert out.dtype == np.float32 and np.array_equal(out, x.astype(np.float32) / 255)
    unit = np.linspace(0, 1, 12).reshape(2, 2, 3)
    np.testing.assert_array_equal(normalize_image(unit, config), unit.astype(np.float32))


@pytest.mark.parametrize(
    ("image", "found"),
    [
        (np.full((4, 4, 3), 1000, np.uint16), "uint16"),
        (np.full((4, 4, 3), 2.0, np.float32), "float32 values in [2.0, 2.0]"),
        (np.full((4, 4, 3), -0.5), "float64 values in [-0.5, -0.5]"),
    ],
)
def test_none_refuses_images_without_an_8_bit_scale(image: np.ndarray, found: str) -> None:
    with pytest.raises(ValueError, match="normalize=none takes uint8") as raised:
        normalize_image(image, IntensityConfig())
    assert found in str(raised.value) and "normalize=percentile" in str(raised.value)


def test_constant_channel_becomes_zeros_and_rare_outliers_ones() -> None:
    image = np.zeros((20, 50, 3), np.uint8)
    image[..., 0] = 7  # constant: no scale at all
    image[..., 1] = np.arange(50, dtype=np.uint8)  # ordinary channel beside them
    image[0, 0, 2] = 255  # one pixel in 1000, above the 99.8th percentile (which is 0)
    out = normalize_image(image, PERCENTILE)
    assert np.isfinite(out).all()
    assert np.array_equal(out[..., 0], np.zeros((20, 50), np.float32))
    expected = np.zeros((20, 50), np.float32)
    expected[0, 0] = 1.0
    assert np.array_equal(out[..., 2], expected)
    assert out[..., 1].min() == 0.0 and out[..., 1].max() == 1.0


@pytest.mark.parametrize(
    "image",
    [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), bool), np.full((2, 2, 3), np.nan)],
)
def test_bad_arrays_are_refused(image: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"expected an|NaN"):
        normalize_image(image, PERCENTILE)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"normalize": "zscore"}, "data.intensity.normalize must be one of ('none', 'percentile')"),
        ({"low": -1.0}, "data.intensity.low must be in [0.0, 100.0], got -1.0"),
        ({"high": 100.5}, "data.intensity.high must be in [0.0, 100.0], got 100.5"),
        ({"low": "1"}, "data.intensity.low must be a number, got '1'"),
        ({"low": 50, "high": 50}, "data.intensity.low must be below data.intensity.high"),
    ],
)
def test_config_errors_name_the_key(values: dict, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        IntensityConfig(**values)
    assert message in str(raised.value)
    assert IntensityConfig(low=0, high=100).high == 100  # the bounds themselves are allowed
