"""Segmenter inputs: arrays of any dtype and layout normalised exactly as files are read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from nuclei.api.segmenter import Segmenter, prediction_settings
from nuclei.data.sources.io import read_image
from nuclei.inference.image_files import as_network_image

H, W = 48, 56


def bright_disks() -> np.ndarray:
    """A uint8 picture spanning 0..255: dark textured background, bright textured disks."""
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[:H, :W]
    picture = rng.integers(0, 60, (H, W)).astype(np.float64)
    picture[rows < 4] = 0  # enough pure black for the 0.5th percentile to be 0
    for r, c, radius in ((14, 14, 7), (30, 38, 9), (38, 12, 5)):
        disk = (rows - r) ** 2 + (cols - c) ** 2 <= radius**2
        picture[disk] = rng.integers(170, 256, disk.sum())
        picture[disk & ((rows - r) ** 2 + (cols - c) ** 2 <= 4)] = 255  # saturated cores
    return picture.astype(np.uint8)


def threshold_net(batch: torch.Tensor) -> torch.Tensor:
    """A stand-in network: logits of 'brighter than mid-grey' (deterministic, exact)."""
    return (batch.mean(dim=1, keepdim=True) - 0.5) * 40.0


def segmenter(size_mode: str = "resize") -> Segmenter:
    settings = prediction_settings(
        {"size": {"mode": size_mode, "image_size": 32}}, tile=32, overlap=8, device="cpu"
    )
    return Segmenter(threshold_net, settings)


def save_like_a_file(folder: Path, name: str, array: np.ndarray) -> Path:
    """The array saved as an image file with the same pixels (TIFF; a 1-bit PNG for bool)."""
    if array.dtype == bool:
        path = folder / f"{name}.png"
        Image.fromarray(array).save(path)  # mode "1", read back as bool
        return path
    path = folder / f"{name}.tif"
    colour = array.ndim == 3 and array.shape[-1] in (3, 4)
    tifffile.imwrite(path, array, photometric="rgb" if colour else "minisblack")
    return path


def variants() -> dict[str, np.ndarray]:
    gray = bright_disks()
    rgb = np.dstack([gray, np.roll(gray, 1, axis=1), gray // 2])
    return {
        "gray_uint8": gray,
        "gray_uint16": gray.astype(np.uint16) * 180 + 1000,
        "gray_float01": gray.astype(np.float32) / 255,
        "gray_float_wide": gray * 3.7 - 250.0,
        "gray_int32": gray.astype(np.int32) * -40,
        "gray_int8": (gray // 2).astype(np.int8),
        "bool": gray > 128,
        "gray_hw1": gray[..., None],
        "rgb_uint8": rgb,
        "rgb_uint16": rgb.astype(np.uint16) * 257,
        "rgba_uint8": np.dstack([rgb, np.full((H, W), 200, np.uint8)]),
        "rgb_float01": rgb / 255.0,
    }


@pytest.mark.parametrize("name", sorted(variants()))
def test_an_array_is_read_as_the_file_holding_its_pixels(name: str, tmp_path: Path) -> None:
    array = variants()[name]
    from_file = read_image(save_like_a_file(tmp_path, name, array))
    from_array = as_network_image(array)
    assert from_array.dtype == np.uint8 and from_array.shape == (H, W, 3)
    np.testing.assert_array_equal(from_array, from_file)


def test_float01_uint8_and_uint16_versions_give_the_same_labels() -> None:
    picture = bright_disks()
    versions = {
        "uint8": picture,
        "uint16": picture.astype(np.uint16) * 257,  # full 16-bit range
        "float01": picture / 255.0,
        "float32_01": (picture / 255.0).astype(np.float32),
    }
    # The reason: the percentile stretch of non-8-bit data ignores the unit, and this 8-bit
    # picture spans 0..255, so every version is the same network input.
    inputs = {k: as_network_image(v) for k, v in versions.items()}
    for k, network_input in inputs.items():
        np.testing.assert_array_equal(network_input[..., 0], picture, err_msg=k)
    for mode in ("resize", "crop"):
        seg = segmenter(mode)
        labels = {k: seg.segment(v) for k, v in versions.items()}
        assert labels["uint8"].dtype == np.uint32 and labels["uint8"].max() == 3
        for k, found in labels.items():
            np.testing.assert_array_equal(found, labels["uint8"], err_msg=f"{mode} {k}")


def test_a_2d_array_is_segmented_at_its_own_size() -> None:
    seg = segmenter()
    gray = bright_disks()
    probabilities = seg.probabilities(gray)
    assert probabilities.shape == (1, H, W) and probabilities.dtype == np.float32
    labels = seg.segment(gray)
    assert labels.shape == (H, W) and labels.dtype == np.uint32
    assert sorted(np.unique(labels)) == [0, 1, 2, 3]
    np.testing.assert_array_equal(labels, seg.instances(probabilities))


def test_a_stack_without_channel_is_refused_with_how_to_pass_it() -> None:
    stack = np.stack([bright_disks()] * 3)  # (3, H, W): a z-stack or channels-first RGB?
    with pytest.raises(ValueError) as refused:
        segmenter().segment(stack)
    message = str(refused.value)
    assert f"shape (3, {H}, {W})" in message
    assert "channel=k" in message and "channel=0" in message
    assert "np.moveaxis(image, 0, -1)" in message
    with pytest.raises(ValueError, match=r"shape \(48, 56, 5\).*5 channels.*pass channel=k"):
        as_network_image(np.zeros((H, W, 5), np.uint16))


@pytest.mark.parametrize("layout", ["chw", "hwc"])
def test_channel_selects_one_plane_of_a_stack(layout: str) -> None:
    planes = [np.zeros((H, W), np.uint16), bright_disks().astype(np.uint16) * 99, np.ones((H, W))]
    stack = np.stack(planes, axis=0 if layout == "chw" else -1)
    np.testing.assert_array_equal(as_network_image(stack, channel=1), as_network_image(planes[1]))
    seg = segmenter()
    np.testing.assert_array_equal(seg.segment(stack, channel=1), seg.segment(planes[1]))
    np.testing.assert_array_equal(as_network_image(stack, channel=-1), as_network_image(planes[2]))


def test_bad_channel_and_shapes_are_refused_clearly() -> None:
    stack = np.zeros((3, H, W), np.uint8)
    with pytest.raises(ValueError, match=r"channel=3 is out of range.*3 channels on axis 0"):
        as_network_image(stack, channel=3)
    with pytest.raises(ValueError, match="leave channel unset for a 2-D image"):
        as_network_image(np.zeros((H, W)), channel=0)
    with pytest.raises(ValueError, match="segment a volume plane by plane"):
        as_network_image(np.zeros((2, 3, H, W)))
    with pytest.raises(ValueError, match="NaN"):
        as_network_image(np.full((H, W), np.nan))
    with pytest.raises(ValueError, match="numeric"):
        as_network_image(np.full((H, W), "a"))
    with pytest.raises(ValueError, match="no pixels"):
        as_network_image(np.zeros((0, W)))


def test_single_plane_stacks_are_grayscale() -> None:
    gray = bright_disks()
    for array in (gray[None], gray[..., None]):
        np.testing.assert_array_equal(as_network_image(array), as_network_image(gray))
