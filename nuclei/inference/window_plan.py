"""Windows for native-resolution prediction, chosen from a memory budget.

:func:`plan_windows` runs the whole image as one window when its forward pass fits the
budget; otherwise the largest windows that fit: the fewest per axis, shrunk to cover the
image evenly (a 4096 px side in 2 windows of 2168 px rather than 9 of 512) and rounded up to
the network's input multiple, overlapping by what its receptive field needs
(:class:`~nuclei.inference.network_profile.NetworkProfile`), so blending them is exact.
Windows of several images of one size share forward passes, as many as fit (on the CPU, only
as many as make :data:`CPU_PASS_PIXELS`: bigger passes are no faster there).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from nuclei.inference.network_profile import Forward, NetworkProfile, network_profile, round_up
from nuclei.inference.tiling import tile_starts

log = logging.getLogger(__name__)

#: Memory budget of a forward pass on the CPU (capped at half the available memory). A 4096^2
#: image with the default U-Net (2 cores, scripts/benchmark_predict.py --budget-gib 4/3/2):
#: 3 strips of 4096x1504 at 4 GiB, peak RSS 5,949 MiB; 4 windows of 2160^2 at 3 GiB,
#: 4,493 MiB; 6 at 2 GiB, 3,876 MiB; the network took 14.3, 14.5 and 14.7 s.
DEFAULT_CPU_BUDGET = 3 * 2**30
#: Share of the free (or, on the CPU, available) memory a forward pass may use by default.
FREE_MEMORY_SHARE = 0.5
#: Pixels a forward pass on the CPU holds at most (unless one window is larger). One window of
#: 256^2 px or more keeps every core busy; stacking more only costs time (default U-Net, 2
#: cores: 1.7 s per 1024^2 image one at a time, 1.9-2.5 s six at a time) and memory.
CPU_PASS_PIXELS = 256 * 256


def available_memory() -> int | None:
    """Bytes of memory available to new processes (Linux ``MemAvailable``), None if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def default_memory_budget(device: torch.device | str) -> int:
    """Bytes a forward pass may use: on a GPU half its free memory; on the CPU
    :data:`DEFAULT_CPU_BUDGET`, or half the available memory when that is less."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * FREE_MEMORY_SHARE)
    available = available_memory()
    if available is None:
        return DEFAULT_CPU_BUDGET
    return min(DEFAULT_CPU_BUDGET, int(available * FREE_MEMORY_SHARE))


@dataclass(frozen=True)
class WindowPlan:
    """How one image size goes through the network (the arguments of ``tiled_predict``).

    ``margin`` None is ``overlap // 4``; ``windows`` per image; ``batch_size`` windows per
    forward pass (of one or several images).
    """

    tile: tuple[int, int]
    overlap: int
    margin: int | None
    multiple: int
    batch_size: int
    windows: int

    @property
    def images_per_pass(self) -> int:
        """How many images of this size to give ``tiled_predict`` at once."""
        return max(1, self.batch_size // self.windows)


def count_windows(height: int, width: int, tile: tuple[int, int], overlap: int) -> int:
    """Windows per image of ``tiled_predict`` for this image size, tile and overlap."""
    return len(tile_starts(height, tile[0], overlap)) * len(tile_starts(width, tile[1], overlap))


def _axis_options(length: int, overlap: int, multiple: int) -> list[tuple[int, int]]:
    """(windows, side) along one axis: for each count, the smallest side covering ``length``
    (a multiple of ``multiple``, at least twice the overlap)."""
    smallest = max(2 * overlap, multiple)
    options = [(1, length)]
    count = 2
    while options[-1][1] > smallest and count <= length:
        side = round_up(math.ceil((length + (count - 1) * overlap) / count), multiple)
        if max(side, smallest) < options[-1][1]:
            options.append((count, max(side, smallest)))
        count += 1
    return options


def _smallest_cover(
    height: int, width: int, profile: NetworkProfile, overlap: int, budget: float
) -> tuple[int, int]:
    """Window sides that fit ``budget`` and cover the image with the fewest pixels."""
    best: tuple[tuple[int, int], tuple[int, int]] | None = None  # (pixels, count), sides
    smallest: tuple[int, int] | None = None
    for rows, side_h in _axis_options(height, overlap, profile.multiple):
        for cols, side_w in _axis_options(width, overlap, profile.multiple):
            if smallest is None or side_h * side_w < smallest[0] * smallest[1]:
                smallest = (side_h, side_w)
            if profile.forward_bytes(side_h, side_w) > budget:
                continue
            cost = (rows * side_h * cols * side_w, rows * cols)
            if best is None or cost < best[0]:
                best = (cost, (side_h, side_w))
    if best is not None:
        return best[1]
    assert smallest is not None
    log.warning("no window fits %.0f MiB; using %s windows", budget / 2**20, smallest)
    return smallest


def plan_windows(
    height: int,
    width: int,
    profile: NetworkProfile,
    budget: float,
    max_batch: int = 8,
    overlap: int | None = None,
) -> WindowPlan:
    """Windows for a ``height`` x ``width`` image within ``budget`` bytes per forward pass.

    The whole image (padded to the network's multiple) when it fits, else the windows of
    :func:`_smallest_cover`, overlapping by ``profile.overlap`` (or ``overlap``, rounded up to
    the multiple, with a margin of at most half of it). Up to ``max_batch`` windows per pass.
    """
    multiple = profile.multiple
    padded = (round_up(height, multiple), round_up(width, multiple))
    if overlap is None:
        overlap, margin = profile.overlap, profile.margin
    else:
        overlap = round_up(overlap, multiple)
        margin = min(profile.margin, overlap // 2)
    if profile.forward_bytes(*padded) <= budget:
        tile, overlap, margin = padded, 0, 0
    else:
        tile = _smallest_cover(*padded, profile, overlap, budget)
    per_pass = int(budget // max(profile.forward_bytes(*tile), 1.0))
    return WindowPlan(
        tile=tile,
        overlap=overlap,
        margin=margin,
        multiple=multiple,
        batch_size=min(max(per_pass, 1), max_batch),
        windows=count_windows(*padded, tile, overlap),
    )


def choose_windows(
    net: Forward,
    image: torch.Tensor,
    tile: int | None,
    overlap: int | None,
    batch_size: int,
    budget: float | None,
    device: torch.device,
) -> WindowPlan:
    """The windows for ``image`` (C, H, W): planned when ``tile`` is None, else ``tile``.

    Both ``tile`` and ``overlap`` given: fixed windows exactly as given (zero-weight margin
    ``overlap // 4``, no alignment, ``batch_size`` windows per pass). Only ``tile``: the
    overlap and margin come from the receptive field (at most half the tile), windows align
    on the network's multiple and batches fit the budget. ``budget`` None: the device's
    :func:`default_memory_budget`. On the CPU a pass holds at most :data:`CPU_PASS_PIXELS`.
    """
    channels, height, width = image.shape
    if tile is not None and overlap is not None:
        windows = count_windows(height, width, (tile, tile), overlap)
        plan = WindowPlan((tile, tile), overlap, None, 1, batch_size, windows)
    else:
        profile = network_profile(net, device, channels)
        budget = default_memory_budget(device) if budget is None else budget
        if tile is None:
            plan = plan_windows(height, width, profile, budget, batch_size, overlap)
        else:
            plan = plan_tile(height, width, tile, profile, budget, batch_size)
    return passes_for_cpu(plan) if device.type == "cpu" else plan


def plan_tile(
    height: int, width: int, tile: int, profile: NetworkProfile, budget: float, max_batch: int
) -> WindowPlan:
    """Windows of side ``tile`` (rounded up to the network's multiple) overlapping by what
    the receptive field needs (at most half the tile), up to ``max_batch`` per pass within
    ``budget``."""
    multiple = profile.multiple
    side = round_up(tile, multiple)
    overlap = min(profile.overlap, side // 2 // multiple * multiple)
    padded = (round_up(height, multiple), round_up(width, multiple))
    per_pass = int(budget // max(profile.forward_bytes(side, side), 1.0))
    return WindowPlan(
        tile=(side, side),
        overlap=overlap,
        margin=min(profile.margin, overlap // 2),
        multiple=multiple,
        batch_size=min(max(per_pass, 1), max_batch),
        windows=count_windows(*padded, (side, side), overlap),
    )


def passes_for_cpu(plan: WindowPlan) -> WindowPlan:
    """``plan`` with at most :data:`CPU_PASS_PIXELS` per forward pass (at least one window)."""
    pixels = plan.tile[0] * plan.tile[1]
    return replace(plan, batch_size=max(1, min(plan.batch_size, CPU_PASS_PIXELS // pixels)))
