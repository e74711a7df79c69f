"""The probes behind window planning: live tensor bytes, receptive-field reach, multiple."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from nuclei.inference.network_probe import (
    MEMORY_SAFETY,
    LiveTensorBytes,
    input_multiple,
    network_profile,
    peak_live_bytes,
)
from nuclei.models.unet import build_unet


def test_live_bytes_count_what_is_alive_at_once() -> None:
    source = torch.ones(1000)  # made before: not counted

    def work() -> torch.Tensor:
        a = source * 2  # 4000 bytes
        b = a + 1  # 8000 alive
        del a
        c = b.view(10, 100)  # a view: no new storage
        d = c.relu_()  # in place: no new storage
        return d * 3  # 8000 alive again (b and the result)

    assert peak_live_bytes(work) == 8000
    with LiveTensorBytes() as counter:
        kept = source.clone()
    assert counter.live == 4000 and counter.peak == 4000
    del kept
    assert counter.live == 0


def test_the_reach_of_three_convolutions_is_three_and_a_function_has_none() -> None:
    torch.manual_seed(0)
    convs = nn.Sequential(*(nn.Conv2d(3, 3, 3, padding=1) for _ in range(3))).eval()
    profile = network_profile(convs, "cpu")
    assert (profile.multiple, profile.reach) == (1, 3)
    assert profile.bytes_per_pixel > 0
    assert network_profile(lambda x: x, "cpu").reach == 0


def test_the_measured_reach_is_where_cutting_the_image_stops_mattering() -> None:
    torch.manual_seed(0)
    net = build_unet(depth=3, base_channels=8)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # one pass sets the statistics: a varied output
    with torch.no_grad():
        net.train()(torch.rand(1, 3, 128, 128))
    net.eval()
    profile = network_profile(net, "cpu")
    assert input_multiple(net) == profile.multiple == 8 and 0 < profile.reach < 128
    image = torch.rand(1, 3, 256, 192, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        whole = net(image)[..., 64:, :]
        cut = net(image[..., 64:, :])  # the image cut on the stride grid
    changed = torch.nonzero((whole - cut).abs().amax(dim=(0, 1, 3)) > 1e-6).flatten()
    assert profile.reach - 3 <= int(changed.max()) < profile.reach


def test_the_memory_estimate_bounds_the_count_and_the_resident_growth() -> None:
    torch.manual_seed(0)
    net = build_unet(depth=4, base_channels=16).eval()
    profile = network_profile(net, "cpu")
    image = torch.rand(2, 3, 320, 384)
    with torch.inference_mode():
        counted = peak_live_bytes(lambda: net(image))
    estimate = profile.forward_bytes(320, 384, windows=2)
    assert counted <= estimate <= MEMORY_SAFETY * 1.1 * counted
    counted_per_pixel = counted / (2 * 320 * 384)
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux's /proc/self/clear_refs")
    # The resident memory a forward adds in a fresh process (its peak reset through
    # /proc/self/clear_refs, after a first forward of that size has paged in its code and
    # sized malloc's arenas) stays under the estimate, and is of the counted bytes' order:
    # malloc may serve part of the second forward from pages the first left resident (seen:
    # 0.78 x the count), so the lower bound is half the count.
    script = textwrap.dedent(
        """
        import torch
        from nuclei.models.unet import build_unet

        def status(key):
            for line in open("/proc/self/status"):
                if line.startswith(key):
                    return int(line.split()[1]) * 1024

        torch.manual_seed(0)
        net = build_unet(depth=4, base_channels=16).eval()
        with torch.inference_mode():
            image = torch.rand(1, 3, 768, 768)
            net(image)
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")  # resets VmHWM, the peak resident set size
            before = status("VmRSS:")
            net(image)
        print(status("VmHWM:") - before)
        """
    )
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    grown = int(done.stdout.split()[-1])
    assert 0.5 * counted_per_pixel * 768**2 <= grown <= profile.forward_bytes(768, 768), grown
