"""Tiled and resized inference: coverage, blending, equality with whole-image inference."""

import itertools

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nuclei.data.decode import resize_image
from nuclei.inference.maps import predict_maps
from nuclei.inference.network_profile import network_profile
from nuclei.inference.resizing import resized_predict, to_tensor
from nuclei.inference.tiling import blend_window, tile_starts, tiled_predict
from nuclei.models.unet import build_unet


def tiny_conv_net(seed: int = 0) -> nn.Module:
    """Three 3x3 convolutions: receptive field radius 3, fully convolutional."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 1, 3, padding=1),
    ).eval()


def random_image(height: int, width: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(3, height, width, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    ("length", "tile", "overlap"), [(100, 32, 8), (64, 64, 16), (65, 64, 16), (10, 64, 16)]
)
def test_tile_starts_cover_the_axis_with_the_overlap(length: int, tile: int, overlap: int) -> None:
    starts = tile_starts(length, tile, overlap)
    side = min(tile, length)
    assert starts[0] == 0 and starts[-1] + side == length
    for a, b in itertools.pairwise(starts):
        assert 0 < b - a <= tile - overlap  # consecutive windows overlap by >= overlap


def test_neighbouring_windows_sum_to_one_across_the_overlap() -> None:
    tile, overlap = 32, 16
    left = blend_window(1, tile, overlap, (False, False, False, True))[0]
    right = blend_window(1, tile, overlap, (False, False, True, False))[0]
    band = left[tile - overlap :] + right[:overlap]
    assert torch.allclose(band, torch.ones(overlap), atol=1e-6)
    assert (left[-overlap // 4 :] == 0).all() and (right[: overlap // 4] == 0).all()
    assert (left[: tile - overlap] == 1).all()  # image-border side keeps full weight


def test_identity_network_is_reproduced_exactly_on_odd_sizes() -> None:
    image = random_image(97, 131)
    out = tiled_predict(lambda x: x, image, tile=32, overlap=12, batch_size=5, activation=None)
    assert out.shape == image.shape
    torch.testing.assert_close(out, image, atol=1e-6, rtol=0)


def test_tiled_equals_whole_image_for_a_small_receptive_field() -> None:
    net = tiny_conv_net()
    image = random_image(100, 130, seed=1)
    with torch.no_grad():
        whole = torch.sigmoid(net(image[None]))[0]
    tiled = tiled_predict(net, image, tile=40, overlap=16, batch_size=3)  # margin 4 >= radius 3
    assert tiled.shape == (1, 100, 130)
    assert (tiled - whole).abs().max() < 1e-5
    # With a margin of 1 < radius 3 the window borders show: the margin is what makes it exact.
    rough = tiled_predict(net, image, tile=40, overlap=4, batch_size=3)
    assert (rough - whole).abs().max() > 1e-3


def calibrated_unet() -> nn.Module:
    """A small U-Net whose batch-norm statistics come from data, so its output varies."""
    torch.manual_seed(0)
    net = build_unet(depth=3, base_channels=8)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # cumulative average: one pass sets the statistics
    with torch.no_grad():
        net.train()(random_image(160, 200, seed=9)[None])
    return net.eval()


def test_tiled_matches_whole_image_for_a_real_unet() -> None:
    net = calibrated_unet()
    image = random_image(160, 200, seed=2)
    with torch.no_grad():
        whole = torch.sigmoid(net(image[None]))[0]
    assert whole.std() > 0.05  # a real spread of probabilities, not a flat map
    tiled = tiled_predict(net, image, tile=128, overlap=64, batch_size=4)
    diff = (tiled - whole).abs()
    # The U-Net's receptive field is wider than the 16-pixel zero-weight margin: close, not exact.
    assert diff.max() < 2e-2 and diff.mean() < 1e-3, (diff.max(), diff.mean())


@pytest.mark.parametrize("margin", [0, 5, 8])
def test_windows_sum_to_one_across_the_overlap_with_any_margin(margin: int) -> None:
    tile, overlap = 40, 16
    left = blend_window(1, tile, overlap, (False, False, False, True), margin)[0]
    right = blend_window(1, tile, overlap, (False, False, True, False), margin)[0]
    band = left[tile - overlap :] + right[:overlap]
    assert torch.allclose(band, torch.ones(overlap), atol=1e-6)
    assert (right[:margin] == 0).all() and (right[margin:] > 0).all()


def test_aligned_windows_with_a_margin_past_the_reach_are_exact() -> None:
    net = calibrated_unet()  # stride 8
    reach = network_profile(net, "cpu").reach
    margin = -(-reach // 8) * 8
    image = random_image(331, 419, seed=3)  # not a multiple of 8: padded like the network
    with torch.no_grad():
        whole = torch.sigmoid(net(image[None]))[0]
    tiled = tiled_predict(
        net, image, (216, 264), 2 * margin + 8, batch_size=3, margin=margin, multiple=8
    )
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max() < 2e-5
    # Windows off the stride grid see another pooling grid: no longer exact.
    shifted = tiled_predict(net, image, (216, 264), 2 * margin + 4, batch_size=3, margin=margin)
    assert (shifted - whole).abs().max() > 1e-4


def test_batched_input_equals_per_image_and_tiny_images_work() -> None:
    net = tiny_conv_net(seed=3)
    batch = torch.stack([random_image(50, 70, seed=s) for s in range(3)])
    together = tiled_predict(net, batch, tile=32, overlap=16, batch_size=4)
    assert together.shape == (3, 1, 50, 70)
    for n in range(3):
        alone = tiled_predict(net, batch[n], tile=32, overlap=16, batch_size=2)
        torch.testing.assert_close(together[n], alone, atol=1e-6, rtol=0)
    tiny = random_image(7, 5)  # smaller than a tile on both sides: one window
    with torch.no_grad():
        expected = torch.sigmoid(net(tiny[None]))[0]
    torch.testing.assert_close(tiled_predict(net, tiny, tile=32, overlap=16), expected)


def test_an_image_in_one_window_is_the_networks_output_bit_for_bit() -> None:
    """Images that fit one window skip the blending (its weights are all 1): the result is
    the network's output on the padded images, cut back (bit for bit in the same passes)."""
    net = tiny_conv_net(seed=4)
    batch = torch.stack([random_image(45, 61, seed=s) for s in range(3)])
    padded = F.pad(batch, (0, 3, 0, 3), mode="reflect")  # to the multiple 16: 48 x 64
    with torch.no_grad():
        expected = torch.sigmoid(net(padded))[..., :45, :61]
        second = torch.sigmoid(net(padded[1:2]))[0, :, :45, :61]
    got = tiled_predict(net, batch, tile=64, overlap=0, batch_size=3, multiple=16)
    assert torch.equal(got, expected)
    in_passes_of_two = tiled_predict(net, batch, tile=64, overlap=0, batch_size=2, multiple=16)
    torch.testing.assert_close(in_passes_of_two, expected, atol=1e-6, rtol=0)
    alone = tiled_predict(net, batch[1], tile=(64, 96), overlap=8, multiple=16)
    assert torch.equal(alone, second)


def test_bad_arguments_are_refused() -> None:
    image = random_image(20, 20)
    with pytest.raises(ValueError, match="overlap"):
        tiled_predict(lambda x: x, image, tile=16, overlap=9)
    with pytest.raises(ValueError, match="margin"):
        tiled_predict(lambda x: x, image, tile=16, overlap=8, margin=5)
    with pytest.raises(TypeError, match="float"):
        tiled_predict(lambda x: x, (image * 255).to(torch.uint8), tile=16, overlap=4)
    with pytest.raises(ValueError, match="size_mode"):
        predict_maps(lambda x: x, [np.zeros((4, 4, 3), np.uint8)], size_mode="warp")


def test_resize_follows_training_and_returns_the_original_size() -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(45, 77), (130, 99)]]
    # The network sees area-resized images scaled by 1/255 (the default intensity setting).
    expected_input = cv2.resize(images[0], (32, 32), interpolation=cv2.INTER_AREA) / 255.0
    torch.testing.assert_close(
        to_tensor(resize_image(images[0], 32)),
        torch.from_numpy(expected_input).permute(2, 0, 1).float(),
    )

    net = tiny_conv_net(seed=4)
    probs = resized_predict(net, images, size=32, batch_size=2)
    for image, prob in zip(images, probs, strict=True):
        assert prob.shape == (1, *image.shape[:2])
        with torch.no_grad():
            small = torch.sigmoid(net(to_tensor(resize_image(image, 32))[None]))
        expected = F.interpolate(small, size=image.shape[:2], mode="bilinear", align_corners=False)
        torch.testing.assert_close(prob, expected[0])

    maps = predict_maps(net, images, size_mode="resize", image_size=32)
    assert [m.shape for m in maps] == [(1, 45, 77), (1, 130, 99)] and maps[0].dtype == np.float32
    native = predict_maps(net, images, size_mode="crop", tile=64, overlap=16)
    assert [m.shape for m in native] == [(1, 45, 77), (1, 130, 99)]
