"""Probability maps of whole images, the way the model was trained (resize or crop mode)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from nuclei.data.config import SIZE_MODES, IntensityConfig
from nuclei.inference.resizing import resized_predict, to_tensor
from nuclei.inference.tiling import tiled_predict

Forward = Callable[[torch.Tensor], torch.Tensor]


def predict_maps(
    net: Forward,
    images: Sequence[np.ndarray],
    size_mode: str = "resize",
    image_size: int = 128,
    tile: int = 512,
    overlap: int = 64,
    batch_size: int = 8,
    device: torch.device | str | None = None,
    intensity: IntensityConfig | None = None,
) -> list[np.ndarray]:
    """Probability maps (C, H, W) float32 per (H, W, 3) uint8 image, the way it was trained.

    Channel 0 is the foreground; a border or distance model adds its second channel.
    ``size_mode="resize"``: :func:`resized_predict` at ``image_size``; ``"crop"`` (trained on
    native-resolution crops): :func:`tiled_predict` at native resolution. Each image is
    normalised as ``intensity`` says, like the training images (default: values / 255).
    """
    if size_mode == "resize":
        probs = resized_predict(
            net, images, image_size, batch_size=batch_size, device=device, intensity=intensity
        )
    elif size_mode == "crop":
        probs = [
            tiled_predict(net, to_tensor(img, intensity), tile, overlap, batch_size, device=device)
            for img in images
        ]
    else:
        raise ValueError(f"size_mode must be one of {SIZE_MODES}, got {size_mode!r}")
    return [p.numpy() for p in probs]
