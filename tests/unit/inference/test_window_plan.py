"""Windows planned from a memory budget: fit, coverage, exactness, and the network probes."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from nuclei.inference.maps import predict_maps
from nuclei.inference.network_profile import NetworkProfile, network_profile
from nuclei.inference.tiling import tile_starts
from nuclei.inference.window_plan import (
    CPU_PASS_PIXELS,
    WindowPlan,
    choose_windows,
    passes_for_cpu,
    plan_windows,
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
    [tiled] = predict_maps(net, [pixels], "crop", batch_size=3, memory_budget=budget)
    with torch.no_grad():
        expected = torch.sigmoid(net(torch.from_numpy(pixels).permute(2, 0, 1)[None] / 255.0))
    np.testing.assert_allclose(tiled, expected[0].numpy(), atol=2e-5, rtol=0)


def test_windows_of_images_of_one_size_share_passes_and_match_one_by_one(unet: nn.Module) -> None:
    net = unet
    images = uint8_images([(96, 120), (96, 120), (70, 50), (96, 120)], seed=3)
    budget = 3 * network_profile(net, "cpu").forward_bytes(96, 120)  # 3 whole images a pass
    together = predict_maps(net, images, "crop", batch_size=8, memory_budget=budget)
    assert [m.shape for m in together] == [(1, 96, 120), (1, 96, 120), (1, 70, 50), (1, 96, 120)]
    for image, maps in zip(images, together, strict=True):
        [alone] = predict_maps(net, [image], "crop", batch_size=1, memory_budget=budget)
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
    [maps] = predict_maps(lambda x: x * 1.0, images, "crop", memory_budget=2e4)  # small windows
    expected = torch.sigmoid(torch.from_numpy(images[0] / 255.0).float()).permute(2, 0, 1)
    np.testing.assert_allclose(maps, expected.numpy(), atol=1e-6)
