"""Probability maps of whole images, the way the model was trained (resize or crop mode).

In crop mode the windows are planned from a memory budget
(:mod:`nuclei.inference.window_plan`): whole images when they fit, else the largest windows
that do, overlapping by the network's receptive field so that blending them is exact.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from nuclei.data.config import SIZE_MODES, IntensityConfig
from nuclei.inference.device import default_device
from nuclei.inference.resizing import resized_input, resized_predict, to_tensor
from nuclei.inference.tiling import tiled_predict
from nuclei.inference.window_plan import choose_windows

Forward = Callable[[torch.Tensor], torch.Tensor]


def network_input(
    image: np.ndarray,
    size_mode: str = "resize",
    image_size: int = 128,
    intensity: IntensityConfig | None = None,
) -> torch.Tensor:
    """What the network sees of one (H, W, 3) uint8 image before batching: resized to
    ``image_size`` and normalised (resize mode), or normalised at its own size (crop)."""
    if size_mode == "resize":
        return resized_input(image, image_size, intensity)
    if size_mode == "crop":
        return to_tensor(image, intensity)
    raise ValueError(f"size_mode must be one of {SIZE_MODES}, got {size_mode!r}")


def predict_maps(
    net: Forward,
    images: Sequence[np.ndarray],
    size_mode: str = "resize",
    image_size: int = 128,
    tile: int | None = None,
    overlap: int | None = None,
    batch_size: int = 8,
    device: torch.device | str | None = None,
    intensity: IntensityConfig | None = None,
    memory_budget: float | None = None,
    inputs: Sequence[torch.Tensor] | None = None,
) -> list[np.ndarray]:
    """Probability maps (C, H, W) float32 per (H, W, 3) uint8 image, the way it was trained.

    Channel 0 is the foreground; a border or distance model adds its second channel.
    ``size_mode="resize"``: :func:`resized_predict` at ``image_size``; ``"crop"`` (trained on
    native-resolution crops): :func:`native_maps`, windows planned from ``memory_budget``
    (bytes per forward pass; None: the device's default) unless ``tile`` and ``overlap``
    say otherwise. Each image is normalised as ``intensity`` says, like the training images
    (default: values / 255). ``batch_size`` caps the images (resize) or windows (crop) per
    forward pass. ``inputs``: the images' :func:`network_input` tensors, made beforehand (in a
    DataLoader worker, say), with the same settings.
    """
    if size_mode == "resize":
        probs = resized_predict(
            net, images, image_size, batch_size, device=device, intensity=intensity, inputs=inputs
        )
        return [p.numpy() for p in probs]
    if size_mode == "crop":
        return native_maps(
            net, images, tile, overlap, batch_size, device, intensity, memory_budget, inputs
        )
    raise ValueError(f"size_mode must be one of {SIZE_MODES}, got {size_mode!r}")


def native_maps(
    net: Forward,
    images: Sequence[np.ndarray],
    tile: int | None = None,
    overlap: int | None = None,
    batch_size: int = 8,
    device: torch.device | str | None = None,
    intensity: IntensityConfig | None = None,
    memory_budget: float | None = None,
    inputs: Sequence[torch.Tensor] | None = None,
) -> list[np.ndarray]:
    """Probability maps at native resolution through :func:`tiled_predict` (``inputs``: the
    images' :func:`to_tensor` tensors, made beforehand).

    Images of one size share a :class:`~nuclei.inference.window_plan.WindowPlan`
    (:func:`choose_windows`) and go through the network together, their windows batched
    across images, as many images at once as fill a forward pass; each image's maps are
    those it gets alone.
    """
    by_size: dict[tuple[int, ...], list[int]] = {}
    for index, image in enumerate(images):
        by_size.setdefault(tuple(image.shape), []).append(index)
    maps: list[np.ndarray | None] = [None] * len(images)

    def tensor(i: int) -> torch.Tensor:
        return to_tensor(images[i], intensity) if inputs is None else inputs[i]

    for indices in by_size.values():
        first = tensor(indices[0])
        where = torch.device(device) if device is not None else default_device(net, first)
        plan = choose_windows(net, first, tile, overlap, batch_size, memory_budget, where)
        for start in range(0, len(indices), plan.images_per_pass):
            chunk = indices[start : start + plan.images_per_pass]
            batch = torch.stack([first if i == indices[0] else tensor(i) for i in chunk])
            probs = tiled_predict(
                net,
                batch,
                plan.tile,
                plan.overlap,
                plan.batch_size,
                device=where,
                margin=plan.margin,
                multiple=plan.multiple,
            )
            for i, prob in zip(chunk, probs, strict=True):
                maps[i] = prob.numpy()
    return [m for m in maps if m is not None]
