"""Prediction at the training resolution: resize like the data module, scale back."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from nuclei.inference.device import default_device

Forward = Callable[[torch.Tensor], torch.Tensor]
Activation = Callable[[torch.Tensor], torch.Tensor] | None


def resize_like_training(image: np.ndarray, size: int) -> np.ndarray:
    """Resize an (H, W, 3) uint8 image to ``size x size`` the way the data module does.

    OpenCV area interpolation, as ``nuclei.data.decode.resize_sample`` applies to images.
    """
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """An (H, W, 3) uint8 image as a (3, H, W) float tensor in [0, 1], like training samples."""
    array = np.require(image, requirements=["C", "W"])  # copies read-only decoder output
    return torch.from_numpy(array).permute(2, 0, 1).float() / 255.0


@torch.inference_mode()
def resized_predict(
    net: Forward,
    images: Sequence[np.ndarray],
    size: int,
    batch_size: int = 8,
    activation: Activation = torch.sigmoid,
    device: torch.device | str | None = None,
) -> list[torch.Tensor]:
    """Probabilities (K, H, W) per (H, W, 3) uint8 image, predicted at ``size x size``.

    Each image is resized as in training (:func:`resize_like_training`), batches of up to
    ``batch_size`` go through the network, and each output is scaled back to its image's own
    size by bilinear interpolation.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    results: list[torch.Tensor] = []
    for first in range(0, len(images), batch_size):
        chunk = images[first : first + batch_size]
        batch = torch.stack([to_tensor(resize_like_training(img, size)) for img in chunk])
        device_ = torch.device(device) if device is not None else default_device(net, batch)
        out = net(batch.to(device_))
        if activation is not None:
            out = activation(out)
        for img, prob in zip(chunk, out.float(), strict=True):
            native = F.interpolate(
                prob.unsqueeze(0), size=img.shape[:2], mode="bilinear", align_corners=False
            )
            results.append(native[0].cpu())
    return results
