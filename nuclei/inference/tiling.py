"""Native-resolution prediction over overlapping tiles, blended by a smooth window.

:func:`tiled_predict` runs a network over overlapping windows of an image of any size, so
memory depends on the tile, not the image (the way a model trained on crops is run).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

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
