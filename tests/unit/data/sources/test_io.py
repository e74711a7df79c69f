"""Reading images of any mode into uint8 RGB, and masks into label images."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from nuclei.data.sources.io import (
    ImageReadError,
    read_image,
    read_instance_masks,
    read_label_mask,
    read_mask,
)


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


def test_16bit_tiff_is_stretched_between_robust_percentiles_not_its_extremes(
    tmp_path: Path,
) -> None:
    """A dead and a hot pixel (2 of 10,000) do not set the scale: the 0.5th and 99.5th
    percentiles of the counts become 0 and 255, so the bulk of the image keeps its contrast
    (a min-max scaling would squeeze it into 4..20 of 255)."""
    counts = np.random.default_rng(0).integers(1000, 5001, (100, 100)).astype(np.uint16)
    counts[0, 0], counts[0, 1], counts[0, 2] = 0, 65535, 3000  # dead, hot, mid-range pixel
    tifffile.imwrite(tmp_path / "x.tif", counts)
    image = read_image(tmp_path / "x.tif")[..., 0]

    low, high = np.percentile(counts, [0.5, 99.5])
    assert 1000 <= low < 1050 and 4950 < high <= 5000  # the bulk's ends, not 0 and 65535
    expected = np.round(np.clip((counts - low) / (high - low), 0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(image, expected)
    assert image[0, 0] == 0 and image[0, 1] == 255  # the outliers clipped
    assert abs(int(image[0, 2]) - 128) <= 3  # mid-range stays mid-range (min-max: 12)
    assert np.percentile(image, 2) < 10 and np.percentile(image, 98) > 245  # full contrast


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


def save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    Image.fromarray(array, mode).save(path)
    return path


def test_rgb_png_and_jpeg_images_are_read_as_rgb(tmp_path: Path) -> None:
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[..., 1] = 120
    np.testing.assert_array_equal(read_image(save(tmp_path / "c.png", rgb)), rgb)
    Image.fromarray(rgb).save(tmp_path / "c.jpg", quality=95)
    image = read_image(tmp_path / "c.jpg")
    assert image.shape == (6, 8, 3) and image.dtype == np.uint8
    assert np.abs(image.astype(int) - rgb).max() <= 3  # lossy, but the same picture


def test_palette_image_is_expanded_to_its_colours(tmp_path: Path) -> None:
    indices = np.array([[0, 1], [1, 0]], np.uint8)
    palette = Image.fromarray(indices, "P")
    palette.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    palette.save(tmp_path / "p.png")
    image = read_image(tmp_path / "p.png")
    np.testing.assert_array_equal(image[0, 0], [10, 20, 30])
    np.testing.assert_array_equal(image[0, 1], [200, 100, 50])


def test_16bit_png_gray_and_colour_are_scaled_not_truncated(tmp_path: Path) -> None:
    ramp = np.linspace(0, 4000, 64).astype(np.uint16).reshape(8, 8)  # a 12-bit camera
    gray = read_image(save(tmp_path / "g16.png", ramp))
    assert gray.max() == 255 and gray.min() == 0  # stretched to the full 8-bit range
    assert (np.diff(gray[..., 0].ravel().astype(int)) >= 0).all()
    colour = np.stack([ramp, ramp // 2, np.zeros_like(ramp)], axis=-1)
    cv2.imwrite(str(tmp_path / "c16.png"), colour[..., ::-1])  # OpenCV writes BGR
    image = read_image(tmp_path / "c16.png")
    assert image.dtype == np.uint8 and image.shape == (8, 8, 3)
    # Channels keep their order and relative brightness (one scale for all of them).
    assert image[..., 0].max() == 255 and 100 < image[..., 1].max() < 160
    assert image[..., 2].max() == 0


def test_channel_first_and_float_tiffs(tmp_path: Path) -> None:
    planes = np.zeros((3, 5, 6), np.uint8)
    planes[2] = 77
    tifffile.imwrite(tmp_path / "cf.tif", planes, photometric="minisblack")
    image = read_image(tmp_path / "cf.tif")
    assert image.shape == (5, 6, 3) and (image[..., 2] == 77).all()
    values = np.linspace(-1.0, 1.0, 30, dtype=np.float32).reshape(5, 6)
    tifffile.imwrite(tmp_path / "f.tiff", values)
    image = read_image(tmp_path / "f.tiff")
    assert image.dtype == np.uint8 and image[0, 0, 0] == 0 and image[-1, -1, 0] == 255


def test_truncated_files_are_named(tmp_path: Path) -> None:
    save(tmp_path / "whole.png", np.random.default_rng(0).integers(0, 255, (32, 32), np.uint8))
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.png: cannot be read"):
        read_image(tmp_path / "cut.png")
    with pytest.raises(ImageReadError, match=r"cut\.png"):
        read_mask(tmp_path / "cut.png")
    tifffile.imwrite(tmp_path / "whole.tif", np.zeros((64, 64), np.uint16))
    data = (tmp_path / "whole.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.tif"):
        read_image(tmp_path / "cut.tif")


def two_blobs() -> np.ndarray:
    mask = np.zeros((10, 10), np.uint8)
    mask[1:4, 1:4] = 1
    mask[6:9, 5:9] = 1
    return mask


@pytest.mark.parametrize("scale", [1, 255])
def test_binary_merged_masks_are_split_into_connected_components(
    tmp_path: Path, scale: int
) -> None:
    path = save(tmp_path / "m.png", two_blobs() * scale)
    notes: list[str] = []
    labels = read_label_mask(path, notes)
    assert labels.dtype == np.int32 and labels.max() == 2
    assert len(np.unique(labels[1:4, 1:4])) == 1 and len(np.unique(labels[6:9, 5:9])) == 1
    assert labels[2, 2] != labels[7, 7]
    assert (labels > 0).sum() == two_blobs().sum()


def test_label_images_keep_touching_instances(tmp_path: Path) -> None:
    labels = np.zeros((8, 8), np.uint16)
    labels[1:5, 1:4] = 300  # 16-bit label values
    labels[1:5, 4:7] = 7  # touches the first nucleus
    labels[6:8, 0:2] = 1000
    read = read_label_mask(save(tmp_path / "l.png", labels))
    assert read.max() == 3
    assert len({read[2, 2], read[2, 5], read[7, 0]}) == 3 and 0 not in {read[2, 2], read[2, 5]}
    np.testing.assert_array_equal(read > 0, labels > 0)


def test_palette_and_colour_coded_label_masks(tmp_path: Path) -> None:
    indices = np.zeros((6, 6), np.uint8)
    indices[0:2, 0:3], indices[0:2, 3:6], indices[4:6, :] = 1, 2, 3
    palette = Image.fromarray(indices, "P")
    palette.putpalette([0, 0, 0, 255, 255, 255, 255, 255, 255, 9, 9, 9] + [0] * 756)
    palette.save(tmp_path / "pal.png")  # two indices share a colour: indices must win
    assert read_label_mask(tmp_path / "pal.png").max() == 3
    colour = np.zeros((6, 6, 3), np.uint8)
    colour[0:2, 0:3] = (255, 0, 0)
    colour[0:2, 3:6] = (0, 255, 0)  # touching, same brightness, different colour
    read = read_label_mask(save(tmp_path / "rgb.png", colour))
    assert read.max() == 2 and read[0, 0] != read[0, 5]


def test_jpeg_masks_are_thresholded_not_read_as_labels(tmp_path: Path) -> None:
    Image.fromarray(two_blobs() * 255).save(tmp_path / "m.jpg", quality=60)
    assert len(np.unique(read_mask(tmp_path / "m.jpg"))) > 2  # compression invented values
    labels = read_label_mask(tmp_path / "m.jpg")
    assert labels.max() == 2


def test_empty_and_overlapping_instance_masks_are_noted(tmp_path: Path) -> None:
    first = np.zeros((6, 6), np.uint8)
    first[:3, :3] = 255
    second = np.zeros((6, 6), np.uint8)
    second[2:5, 2:5] = 255
    paths = [
        save(tmp_path / "a.png", first),
        save(tmp_path / "b.png", second),
        save(tmp_path / "c.png", np.zeros((6, 6), np.uint8)),
    ]
    notes: list[str] = []
    labels = read_instance_masks(paths, (6, 6), notes)
    assert labels[2, 2] == 2 and labels[0, 0] == 1
    assert any("1 empty mask file(s): c.png" in n for n in notes)
    assert any("1 mask(s) overlap earlier ones" in n and "b.png" in n for n in notes)
