"""Prediction at the training resolution: resize like the data module, scale back."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from nuclei.data.batches import scale_to_size
from nuclei.data.config import IntensityConfig
from nuclei.data.decode import resize_image
from nuclei.data.intensity import normalize_image
from nuclei.inference.device import default_device

Forward = Callable[[torch.Tensor], torch.Tensor]
Activation = Callable[[torch.Tensor], torch.Tensor] | None


def to_tensor(image: np.ndarray, intensity: IntensityConfig | None = None) -> torch.Tensor:
    """An (H, W, 3) uint8 image as the (3, H, W) float tensor the network sees, normalised
    as in training (:func:`nuclei.data.intensity.normalize_image`; default: values / 255)."""
    normalized = normalize_image(image, intensity or IntensityConfig())
    return torch.from_numpy(np.ascontiguousarray(normalized, dtype=np.float32)).permute(2, 0, 1)


def resized_input(
    image: np.ndarray, size: int, intensity: IntensityConfig | None = None
) -> torch.Tensor:
    """The (3, size, size) tensor the network sees of an (H, W, 3) uint8 image in resize mode:
    resized as in training (:func:`nuclei.data.decode.resize_image`), then :func:`to_tensor`."""
    return to_tensor(resize_image(image, size), intensity)


@torch.inference_mode()
def resized_predict(
    net: Forward,
    images: Sequence[np.ndarray],
    size: int,
    batch_size: int = 8,
    activation: Activation = torch.sigmoid,
    device: torch.device | str | None = None,
    intensity: IntensityConfig | None = None,
    inputs: Sequence[torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    """Probabilities (K, H, W) per (H, W, 3) uint8 image, predicted at ``size x size``.

    Each image is resized and normalised as in training (:func:`resized_input`; ``inputs``:
    those tensors, made beforehand), batches of up to ``batch_size`` go through the network,
    and each output is scaled back to its image's own size
    (:func:`nuclei.data.batches.scale_to_size`, as validation scores it).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    results: list[torch.Tensor] = []
    for first in range(0, len(images), batch_size):
        chunk = images[first : first + batch_size]
        batch = torch.stack(
            [resized_input(img, size, intensity) for img in chunk]
            if inputs is None
            else list(inputs[first : first + batch_size])
        )
        device_ = torch.device(device) if device is not None else default_device(net, batch)
        out = net(batch.to(device_))
        if activation is not None:
            out = activation(out)
        for img, prob in zip(chunk, out.float(), strict=True):
            results.append(scale_to_size(prob, img.shape[:2]).cpu())
    return results
