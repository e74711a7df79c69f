"""segmentation-models-pytorch networks, offline by default (no pretrained weights)."""

from __future__ import annotations

from typing import Any

import segmentation_models_pytorch as smp
import torch
from torch import nn

from nuclei.models.padding import PadToMultiple

# ImageNet statistics, hard-coded: smp's get_preprocessing_params() downloads them.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# smp's U-Net decoder widths for encoder_depth=5; shallower encoders take the last entries.
UNET_DECODER_CHANNELS = (256, 128, 64, 32, 16)


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std`` for inputs in [0, 1], as pretrained encoders expect."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise a (N, C, H, W) batch."""
        return (x - self.mean) / self.std


def build_smp_model(
    arch: str = "Unet",
    encoder_name: str = "resnet18",
    encoder_weights: str | None = None,
    encoder_depth: int = 5,
    in_channels: int = 3,
    classes: int = 1,
    freeze_encoder: bool = False,
    **kwargs: Any,
) -> nn.Module:
    """An smp model (any architecture and encoder) that accepts any input size.

    ``encoder_weights=None`` (the default) starts from random weights and needs no network;
    ``"imagenet"`` downloads pretrained weights and adds ImageNet input normalisation.
    ``freeze_encoder`` stops the encoder's weights and batch-norm statistics from training.
    """
    if arch.lower() in ("unet", "unetplusplus") and "decoder_channels" not in kwargs:
        kwargs["decoder_channels"] = UNET_DECODER_CHANNELS[
            len(UNET_DECODER_CHANNELS) - encoder_depth :
        ]
    try:
        model = smp.create_model(
            arch,
            encoder_name=encoder_name,
            encoder_weights=encoder_weights,
            encoder_depth=encoder_depth,
            in_channels=in_channels,
            classes=classes,
            **kwargs,
        )
    except (OSError, ConnectionError, RuntimeError) as exc:
        if encoder_weights is None:
            raise
        raise RuntimeError(
            f"Could not load {encoder_weights!r} weights for encoder {encoder_name!r}: {exc}. "
            "Pretrained weights are downloaded from the internet; without a network use "
            "model.encoder_weights=null."
        ) from exc
    if freeze_encoder:
        model.freeze_encoder()
    net: nn.Module = model
    if encoder_weights is not None:
        net = nn.Sequential(Normalize(IMAGENET_MEAN, IMAGENET_STD), model)
    return PadToMultiple(net, 2**encoder_depth)
