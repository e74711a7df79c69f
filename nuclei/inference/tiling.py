"""Native-resolution prediction over overlapping tiles, blended by a smooth window.

:func:`tiled_predict` runs a network over overlapping windows of an image of any size, so
memory depends on the tile, not the image (the way a model trained on crops is run).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch

from nuclei.inference.device import default_device

Forward = Callable[[torch.Tensor], torch.Tensor]
Activation = Callable[[torch.Tensor], torch.Tensor] | None


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


def _edge_ramp(overlap: int) -> torch.Tensor:
    """Weights across the band of ``overlap`` pixels at an interior tile edge (outermost first).

    Zero over the outer quarter (where the tile's border effects live), a raised cosine from
    0 to 1 across the middle half, 1 over the inner quarter. Two tiles overlapping by exactly
    ``overlap`` get weights summing to 1 across the band.
    """
    margin = overlap // 4
    width = overlap - 2 * margin
    ramp = torch.zeros(overlap, dtype=torch.float64)
    position = (torch.arange(width, dtype=torch.float64) + 0.5) / width
    ramp[margin : margin + width] = 0.5 - 0.5 * torch.cos(math.pi * position)
    ramp[margin + width :] = 1.0
    return ramp


def _axis_profile(
    length: int, overlap: int, low_interior: bool, high_interior: bool
) -> torch.Tensor:
    profile = torch.ones(length, dtype=torch.float64)
    if overlap > 0:
        ramp = _edge_ramp(overlap)
        if low_interior:
            profile[:overlap] *= ramp
        if high_interior:
            profile[-overlap:] *= ramp.flip(0)
    return profile


def blend_window(
    height: int, width: int, overlap: int, interior: tuple[bool, bool, bool, bool]
) -> torch.Tensor:
    """2-D blending weights (height, width) of one tile.

    ``interior`` flags the (top, bottom, left, right) edges that lie inside the image, where a
    neighbouring tile takes over; edges on the image border keep full weight up to the border.
    """
    top, bottom, left, right = interior
    rows = _axis_profile(height, overlap, top, bottom)
    cols = _axis_profile(width, overlap, left, right)
    return torch.outer(rows, cols).float()


def _windows(height: int, width: int, tile: int, overlap: int) -> Iterator[tuple[int, int]]:
    for y in tile_starts(height, tile, overlap):
        for x in tile_starts(width, tile, overlap):
            yield y, x


def _check_arguments(image: torch.Tensor, tile: int, overlap: int, batch_size: int) -> None:
    """Refuse tiling settings or an image that :func:`tiled_predict` cannot work with."""
    if tile < 1:
        raise ValueError(f"tile must be >= 1, got {tile}")
    if not 0 <= overlap <= tile // 2:
        raise ValueError(f"overlap must be in [0, tile // 2] = [0, {tile // 2}], got {overlap}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if image.ndim not in (3, 4):
        raise ValueError(f"image must be (C, H, W) or (N, C, H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise TypeError(f"image must be a float tensor (values in [0, 1]), got {image.dtype}")


@torch.inference_mode()
def tiled_predict(
    net: Forward,
    image: torch.Tensor,
    tile: int = 512,
    overlap: int = 64,
    batch_size: int = 8,
    activation: Activation = torch.sigmoid,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Run ``net`` over overlapping ``tile x tile`` windows and blend them into one map.

    ``image`` is (C, H, W) or (N, C, H, W), float; the result is (K, H, W) or (N, K, H, W)
    float32 on the CPU, where ``net`` maps (B, C, h, w) to (B, K, h, w) and ``activation``
    (sigmoid by default, None for none) is applied to each window's output before blending.
    Windows of up to ``batch_size`` go through the network together on ``device`` (default:
    the network's); only they and the (N, K, H, W) result are in memory at once. Sides
    smaller than ``tile`` are covered by one window of the image's own size.

    Each window is weighted by :func:`blend_window` and the sum is divided by the summed
    weights. Pixels within ``overlap // 4`` of an interior window edge get zero weight, so a
    network whose receptive field reaches at most that far gives exactly the whole-image
    result; for deeper networks the difference shrinks as ``overlap`` grows. Put a network
    in eval mode first (batch norm, dropout).
    """
    _check_arguments(image, tile, overlap, batch_size)
    batch = image if image.ndim == 4 else image.unsqueeze(0)
    n_images, _, height, width = batch.shape
    device = torch.device(device) if device is not None else default_device(net, batch)
    tile_h, tile_w = min(tile, height), min(tile, width)

    windows = list(_windows(height, width, tile, overlap))
    blend: dict[tuple[bool, ...], torch.Tensor] = {}  # at most 9 distinct windows

    def window_at(y: int, x: int) -> torch.Tensor:
        interior = (y > 0, y + tile_h < height, x > 0, x + tile_w < width)
        if interior not in blend:
            blend[interior] = blend_window(tile_h, tile_w, overlap, interior)
        return blend[interior]

    weights = torch.zeros(height, width)
    for y, x in windows:
        weights[y : y + tile_h, x : x + tile_w] += window_at(y, x)

    result: torch.Tensor | None = None
    jobs = [(n, y, x) for n in range(n_images) for y, x in windows]
    for first in range(0, len(jobs), batch_size):
        chunk = jobs[first : first + batch_size]
        crops = torch.stack([batch[n, :, y : y + tile_h, x : x + tile_w] for n, y, x in chunk])
        out = net(crops.to(device))
        if activation is not None:
            out = activation(out)
        out = out.float().cpu()
        if result is None:
            result = torch.zeros(n_images, out.shape[1], height, width)
        for (n, y, x), window_out in zip(chunk, out, strict=True):
            result[n, :, y : y + tile_h, x : x + tile_w] += window_out * window_at(y, x)
    assert result is not None  # at least one window per image
    result /= weights.clamp_min(1e-12)
    return result if image.ndim == 4 else result[0]
