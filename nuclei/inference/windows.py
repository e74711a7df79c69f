"""Native-resolution prediction over windows: how many and how large (a plan within a
memory budget), and running a network over them, blended by a smooth window.

:func:`plan_windows` runs the whole image as one window when its forward pass fits the
budget; otherwise the largest windows that fit: the fewest per axis, shrunk to cover the
image evenly (a 4096 px side in 2 windows of 2168 px rather than 9 of 512) and rounded up to
the network's input multiple, overlapping by what its receptive field needs
(:class:`~nuclei.inference.network_probe.NetworkProfile`), so blending them is exact.
Windows of several images of one size share forward passes, as many as fit (on the CPU, only
as many as make :data:`CPU_PASS_PIXELS`: bigger passes are no faster there).

:func:`tiled_predict` runs a network over overlapping windows of an image of any size, so
memory depends on the window, not the image (the way a model trained on crops is run).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from nuclei.inference.network_probe import Forward, NetworkProfile, network_profile, round_up

Activation = Callable[[torch.Tensor], torch.Tensor] | None


def default_device(
    net: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor
) -> torch.device:
    """The device of the network's weights (a module), else the image's."""
    if isinstance(net, nn.Module):
        for tensor in (*net.parameters(), *net.buffers()):
            return tensor.device
    return image.device


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


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Offsets of windows of side ``tile`` that cover ``[0, length)``, overlapping >= ``overlap``.

    Windows advance by ``tile - overlap``; the last one is moved back to end at ``length``
    (so it may overlap its neighbour by more). A length up to ``tile`` gets one window.
    """
    if length <= tile:
        return [0]
    stride = tile - overlap
    count = math.ceil((length - tile) / stride) + 1
    return [min(i * stride, length - tile) for i in range(count)]


def _edge_ramp(overlap: int, margin: int | None = None) -> torch.Tensor:
    """Weights across the band of ``overlap`` pixels at an interior tile edge (outermost first).

    Zero over the outer ``margin`` pixels (default ``overlap // 4``: where the tile's border
    effects live), a raised cosine from 0 to 1 across the rest of the band but the inner
    ``margin``, 1 over that. Two tiles overlapping by exactly ``overlap`` get weights summing
    to 1 across the band.
    """
    margin = overlap // 4 if margin is None else margin
    width = overlap - 2 * margin
    ramp = torch.zeros(overlap, dtype=torch.float64)
    position = (torch.arange(width, dtype=torch.float64) + 0.5) / width
    ramp[margin : margin + width] = 0.5 - 0.5 * torch.cos(math.pi * position)
    ramp[margin + width :] = 1.0
    return ramp


def _axis_profile(
    length: int, overlap: int, margin: int | None, low_interior: bool, high_interior: bool
) -> torch.Tensor:
    profile = torch.ones(length, dtype=torch.float64)
    if overlap > 0:
        ramp = _edge_ramp(overlap, margin)
        if low_interior:
            profile[:overlap] *= ramp
        if high_interior:
            profile[-overlap:] *= ramp.flip(0)
    return profile


def blend_window(
    height: int,
    width: int,
    overlap: int,
    interior: tuple[bool, bool, bool, bool],
    margin: int | None = None,
) -> torch.Tensor:
    """2-D blending weights (height, width) of one tile.

    ``interior`` flags the (top, bottom, left, right) edges that lie inside the image, where a
    neighbouring tile takes over; edges on the image border keep full weight up to the border.
    ``margin`` is the zero-weight band at interior edges (default ``overlap // 4``).
    """
    top, bottom, left, right = interior
    rows = _axis_profile(height, overlap, margin, top, bottom)
    cols = _axis_profile(width, overlap, margin, left, right)
    return torch.outer(rows, cols).float()


def pad_to_multiple(batch: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad (N, C, H, W) at the bottom and right to multiples of ``multiple`` the way
    :class:`nuclei.models.padding.PadToMultiple` pads a network's input (reflect, or
    replicate when the image is too small to reflect)."""
    height, width = batch.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h == 0 and pad_w == 0:
        return batch
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(batch, (0, pad_w, 0, pad_h), mode=mode)


def _check_arguments(
    image: torch.Tensor, tile: tuple[int, int], overlap: int, margin: int | None, batch_size: int
) -> None:
    """Refuse tiling settings or an image that :func:`tiled_predict` cannot work with."""
    if min(tile) < 1:
        raise ValueError(f"tile must be >= 1, got {tile}")
    if not 0 <= overlap <= min(tile) // 2:
        half = min(tile) // 2
        raise ValueError(f"overlap must be in [0, tile // 2] = [0, {half}], got {overlap}")
    if margin is not None and not 0 <= margin <= overlap // 2:
        raise ValueError(f"margin must be in [0, overlap // 2] = [0, {overlap // 2}], got {margin}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if image.ndim not in (3, 4):
        raise ValueError(f"image must be (C, H, W) or (N, C, H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise TypeError(f"image must be a float tensor (values in [0, 1]), got {image.dtype}")


class _Blender:
    """The windows of one image size, their weights, and the sum of their weights."""

    def __init__(
        self, height: int, width: int, tile: tuple[int, int], overlap: int, margin: int | None
    ) -> None:
        self.size = (min(tile[0], height), min(tile[1], width))
        self.starts = [
            (y, x)
            for y in tile_starts(height, tile[0], overlap)
            for x in tile_starts(width, tile[1], overlap)
        ]
        self._shape, self._overlap, self._margin = (height, width), overlap, margin
        self._cache: dict[tuple[bool, ...], torch.Tensor] = {}  # at most 9 distinct windows
        self.total = torch.zeros(height, width)
        for y, x in self.starts:
            self.total[self.region(y, x)] += self.weights(y, x)

    def region(self, y: int, x: int) -> tuple[slice, slice]:
        """Where the window at (y, x) lies in the image."""
        return slice(y, y + self.size[0]), slice(x, x + self.size[1])

    def weights(self, y: int, x: int) -> torch.Tensor:
        """The blending weights of the window at (y, x)."""
        (height, width), (tile_h, tile_w) = self._shape, self.size
        interior = (y > 0, y + tile_h < height, x > 0, x + tile_w < width)
        if interior not in self._cache:
            self._cache[interior] = blend_window(
                tile_h, tile_w, self._overlap, interior, self._margin
            )
        return self._cache[interior]


@torch.inference_mode()
def tiled_predict(
    net: Forward,
    image: torch.Tensor,
    tile: int | tuple[int, int] = 512,
    overlap: int = 64,
    batch_size: int = 8,
    activation: Activation = torch.sigmoid,
    device: torch.device | str | None = None,
    *,
    margin: int | None = None,
    multiple: int = 1,
) -> torch.Tensor:
    """Run ``net`` over overlapping ``tile`` windows (a side, or (height, width)) and blend them.

    ``image`` is (C, H, W) or (N, C, H, W), float; the result is (K, H, W) or (N, K, H, W)
    float32 on the CPU, where ``net`` maps (B, C, h, w) to (B, K, h, w) and ``activation``
    (sigmoid by default, None for none) is applied to each window's output before blending.
    Windows of up to ``batch_size`` (of one image or several) go through the network together
    on ``device`` (default: the network's); only they and the (N, K, H, W) result are in
    memory at once. Sides smaller than ``tile`` are covered by one window of the image's size.
    ``multiple`` > 1 first pads the image like the network would (:func:`pad_to_multiple`),
    so windows of sides and overlap in multiples of it start on the network's stride grid.

    Each window is weighted by :func:`blend_window` and the sum is divided by the summed
    weights. Pixels within ``margin`` (default ``overlap // 4``) of an interior window edge
    get zero weight, so a network whose receptive field reaches at most that far (on the
    stride grid) gives exactly the whole-image result; for deeper networks the difference
    shrinks as the margin grows. Put a network in eval mode first (batch norm, dropout).
    """
    tile = (tile, tile) if isinstance(tile, int) else (int(tile[0]), int(tile[1]))
    _check_arguments(image, tile, overlap, margin, batch_size)
    batch = image if image.ndim == 4 else image.unsqueeze(0)
    n_images, _, height, width = batch.shape
    device = torch.device(device) if device is not None else default_device(net, batch)
    batch = pad_to_multiple(batch, multiple)
    if tile[0] >= batch.shape[-2] and tile[1] >= batch.shape[-1]:  # one window: the image
        result = _whole_images(net, batch, batch_size, activation, device)
        return _cropped(result, height, width, image.ndim)
    blender = _Blender(*batch.shape[-2:], tile, overlap, margin)

    result: torch.Tensor | None = None
    jobs = [(n, y, x) for n in range(n_images) for y, x in blender.starts]
    for first in range(0, len(jobs), batch_size):
        chunk = jobs[first : first + batch_size]
        crops = torch.stack([batch[(n, slice(None), *blender.region(y, x))] for n, y, x in chunk])
        out = _outputs(net, crops, activation, device)
        if result is None:
            result = torch.zeros(n_images, out.shape[1], *batch.shape[-2:])
        for (n, y, x), window_out in zip(chunk, out, strict=True):
            result[(n, slice(None), *blender.region(y, x))] += window_out * blender.weights(y, x)
    assert result is not None  # at least one window per image
    result /= blender.total.clamp_min(1e-12)
    return _cropped(result, height, width, image.ndim)


def _whole_images(
    net: Forward,
    batch: torch.Tensor,
    batch_size: int,
    activation: Activation,
    device: torch.device,
) -> torch.Tensor:
    """The outputs of (N, C, H, W) images that are each a single window: what blending would
    give (its weights are all 1), without the blending's buffers."""
    outputs = [
        _outputs(net, batch[first : first + batch_size], activation, device)
        for first in range(0, batch.shape[0], batch_size)
    ]
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs)


def _outputs(
    net: Forward, crops: torch.Tensor, activation: Activation, device: torch.device
) -> torch.Tensor:
    """``net``'s outputs for a batch of windows on ``device``, activated, as float32 on the CPU."""
    out = net(crops.to(device))
    if activation is not None:
        out = activation(out)
    return out.float().cpu()


def _cropped(result: torch.Tensor, height: int, width: int, ndim: int) -> torch.Tensor:
    """(N, K, H', W') results cut back to the images' (height, width), (K, H, W) for one
    (C, H, W) image (``ndim`` 3)."""
    if result.shape[-2:] != (height, width):
        result = result[..., :height, :width].contiguous()
    return result if ndim == 4 else result[0]
