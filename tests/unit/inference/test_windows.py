"""Windows planned from a memory budget: fit, coverage, exactness, and the network probes.

Tiled and resized inference: coverage, blending, equality with whole-image inference."""

import itertools
import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nuclei.data.decode import resize_image
from nuclei.inference.network_probe import NetworkProfile, network_profile
from nuclei.inference.probabilities import predict_probabilities, resized_predict, to_tensor
from nuclei.inference.windows import (
    CPU_PASS_PIXELS,
    WindowPlan,
    blend_window,
    choose_windows,
    passes_for_cpu,
    plan_windows,
    tile_starts,
    tiled_predict,
)
from nuclei.models.unet import build_unet

DEFAULT_UNET = NetworkProfile(multiple=16, reach=94, bytes_per_pixel=612.0)
GIB = 2**30


def calibrated_unet(depth: int = 3) -> nn.Module:
    """A small U-Net (stride 8) whose batch-norm statistics come from data, so its output
    varies."""
    torch.manual_seed(0)
    net = build_unet(depth=depth, base_channels=8)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # cumulative average: one pass sets the statistics
    with torch.no_grad():
        net.train()(torch.rand(1, 3, 160, 200, generator=torch.Generator().manual_seed(9)))
    return net.eval()


@pytest.fixture(scope="module")
def unet() -> nn.Module:
    return calibrated_unet()


def uint8_images(shapes: list[tuple[int, int]], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]


@pytest.mark.parametrize("side", [1024, 1000, 2048])
def test_an_image_that_fits_is_one_window_batched_with_others(side: int) -> None:
    plan = plan_windows(side, side, DEFAULT_UNET, 4 * GIB, max_batch=8)
    padded = math.ceil(side / 16) * 16
    assert plan.windows == 1 and plan.tile == (padded, padded) and plan.overlap == 0
    assert plan.batch_size * DEFAULT_UNET.forward_bytes(*plan.tile) <= 4 * GIB
    assert plan.images_per_pass == plan.batch_size


@pytest.mark.parametrize(
    ("height", "width", "budget", "extra"), [(4096, 4096, 4, 1.15), (5000, 3000, 1, 1.35)]
)
def test_large_images_get_few_even_windows_that_fit(
    height: int, width: int, budget: int, extra: float
) -> None:
    plan = plan_windows(height, width, DEFAULT_UNET, budget * GIB, max_batch=8)
    assert plan.windows > 1 and plan.margin == 96 and plan.overlap == 2 * 96 + 16
    assert plan.batch_size * DEFAULT_UNET.forward_bytes(*plan.tile) <= budget * GIB
    assert DEFAULT_UNET.forward_bytes(*plan.tile) > 0.5 * budget * GIB  # not needlessly small
    counts = []
    for length, side in zip((height, width), plan.tile, strict=True):
        count = len(tile_starts(math.ceil(length / 16) * 16, side, plan.overlap))
        # Shrunk to cover the side evenly: at most one multiple of slack per window.
        assert side % 16 == 0 and count * side <= length + (count - 1) * plan.overlap + count * 16
        counts.append(count)
    assert counts[0] * counts[1] == plan.windows
    assert plan.windows * plan.tile[0] * plan.tile[1] < extra * height * width


def test_planned_tiling_of_a_real_unet_equals_its_whole_image_forward(unet: nn.Module) -> None:
    net = unet
    image = torch.rand(3, 400, 520, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        whole = torch.sigmoid(net(image[None]))[0]
    assert whole.std() > 0.05  # a real spread of probabilities, not a flat map
    profile = network_profile(net, "cpu")
    budget = profile.forward_bytes(272, 320)  # forces several windows
    plan = choose_windows(net, image, None, None, 3, budget, torch.device("cpu"))
    assert plan.windows >= 4 and plan.margin is not None and plan.margin >= profile.reach
    pixels = (255 * image.permute(1, 2, 0)).round().to(torch.uint8).numpy()
    [tiled] = predict_probabilities(net, [pixels], "crop", batch_size=3, memory_budget=budget)
    with torch.no_grad():
        expected = torch.sigmoid(net(torch.from_numpy(pixels).permute(2, 0, 1)[None] / 255.0))
    np.testing.assert_allclose(tiled, expected[0].numpy(), atol=2e-5, rtol=0)


def test_windows_of_images_of_one_size_share_passes_and_match_one_by_one(unet: nn.Module) -> None:
    net = unet
    images = uint8_images([(96, 120), (96, 120), (70, 50), (96, 120)], seed=3)
    budget = 3 * network_profile(net, "cpu").forward_bytes(96, 120)  # 3 whole images a pass
    together = predict_probabilities(net, images, "crop", batch_size=8, memory_budget=budget)
    assert [m.shape for m in together] == [(1, 96, 120), (1, 96, 120), (1, 70, 50), (1, 96, 120)]
    for image, maps in zip(images, together, strict=True):
        [alone] = predict_probabilities(net, [image], "crop", batch_size=1, memory_budget=budget)
        np.testing.assert_allclose(maps, alone, atol=1e-6, rtol=0)


def test_tile_and_overlap_stay_overrides(unet: nn.Module) -> None:
    net = unet
    image = torch.rand(3, 300, 300)
    cpu = torch.device("cpu")
    fixed = choose_windows(net, image, 128, 32, 4, None, cpu)
    assert (fixed.tile, fixed.overlap, fixed.margin, fixed.multiple) == ((128, 128), 32, None, 1)
    reach = network_profile(net, cpu).reach
    tiled = choose_windows(net, image, 200, None, 4, 10 * GIB, cpu)
    assert tiled.tile == (200, 200) and tiled.margin is not None and tiled.margin >= reach
    narrow = choose_windows(net, image, None, 16, 4, 2**20, cpu)
    assert narrow.overlap == 16 and narrow.margin == 8 and narrow.windows > 1


def test_a_cpu_pass_holds_one_large_window_or_a_few_small_ones(unet: nn.Module) -> None:
    cpu = torch.device("cpu")
    large = choose_windows(unet, torch.rand(3, 512, 512), None, None, 8, 10 * GIB, cpu)
    assert large.tile == (512, 512) and large.batch_size == 1 and large.images_per_pass == 1
    small = choose_windows(unet, torch.rand(3, 64, 64), None, None, 32, 10 * GIB, cpu)
    assert small.batch_size == CPU_PASS_PIXELS // (64 * 64) == 16
    fixed = choose_windows(unet, torch.rand(3, 300, 300), 128, 32, 8, None, cpu)
    assert fixed.batch_size == CPU_PASS_PIXELS // (128 * 128) == 4
    plan = WindowPlan((64, 64), 0, 0, 16, batch_size=2, windows=1)
    assert passes_for_cpu(plan) == plan  # never more windows than asked for


def test_planning_works_for_a_plain_function() -> None:
    images = uint8_images([(40, 30)])
    # small windows
    [maps] = predict_probabilities(lambda x: x * 1.0, images, "crop", memory_budget=2e4)
    expected = torch.sigmoid(torch.from_numpy(images[0] / 255.0).float()).permute(2, 0, 1)
    np.testing.assert_allclose(maps, expected.numpy(), atol=1e-6)


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


def calibrated_small_unet() -> nn.Module:
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
    net = calibrated_small_unet()
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
    net = calibrated_small_unet()  # stride 8
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
        predict_probabilities(lambda x: x, [np.zeros((4, 4, 3), np.uint8)], size_mode="warp")


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

    maps = predict_probabilities(net, images, size_mode="resize", image_size=32)
    assert [m.shape for m in maps] == [(1, 45, 77), (1, 130, 99)] and maps[0].dtype == np.float32
    native = predict_probabilities(net, images, size_mode="crop", tile=64, overlap=16)
    assert [m.shape for m in native] == [(1, 45, 77), (1, 130, 99)]
