"""Reading images of any mode into uint8 RGB, and masks into label images."""

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from nuclei.data.io import ImageReadError, read_image, read_instance_masks, read_mask


def test_rgba_png_loses_alpha(tmp_path: Path) -> None:
    rgba = np.zeros((5, 7, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    image = read_image(tmp_path / "a.png")
    assert image.shape == (5, 7, 3) and image.dtype == np.uint8
    assert (image[..., 0] == 200).all() and (image[..., 1:] == 0).all()


def test_grayscale_png_becomes_three_equal_channels(tmp_path: Path) -> None:
    gray = np.arange(35, dtype=np.uint8).reshape(5, 7)
    Image.fromarray(gray).save(tmp_path / "g.png")
    image = read_image(tmp_path / "g.png")
    assert image.shape == (5, 7, 3)
    for channel in range(3):
        np.testing.assert_array_equal(image[..., channel], gray)


def test_16bit_tiff_is_scaled_to_8bit(tmp_path: Path) -> None:
    ramp = np.linspace(1000, 60000, 100, dtype=np.uint16).reshape(10, 10)
    tifffile.imwrite(tmp_path / "x.tif", ramp)
    image = read_image(tmp_path / "x.tif")
    assert image.dtype == np.uint8 and image.shape == (10, 10, 3)
    assert image.min() == 0 and image.max() == 255
    assert (np.diff(image[..., 0].ravel().astype(int)) >= 0).all()  # order kept


def test_unreadable_file_error_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ImageReadError, match=r"broken\.png"):
        read_image(bad)


def test_instance_masks_become_labels_and_size_mismatch_is_named(tmp_path: Path) -> None:
    first = np.zeros((6, 6), np.uint8)
    first[:2, :2] = 255
    second = np.zeros((6, 6), np.uint8)
    second[4:, 4:] = 255
    Image.fromarray(first).save(tmp_path / "a.png")
    Image.fromarray(second).save(tmp_path / "b.png")
    labels = read_instance_masks([tmp_path / "a.png", tmp_path / "b.png"], (6, 6))
    assert set(np.unique(labels)) == {0, 1, 2}
    assert (labels[:2, :2] == 1).all() and (labels[4:, 4:] == 2).all()
    assert read_mask(tmp_path / "a.png").shape == (6, 6)
    with pytest.raises(ImageReadError, match=r"a.png.*6x6.*5x5"):
        read_instance_masks([tmp_path / "a.png"], (5, 5))
