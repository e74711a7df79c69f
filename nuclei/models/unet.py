"""A U-Net written from scratch (Ronneberger et al., 2015), configurable in depth and width."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nuclei.models.padding import PadToMultiple

UPSAMPLING_MODES = ("transposed", "bilinear")


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each followed by optional batch norm and ReLU, then dropout."""

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool, dropout: float):
        layers: list[nn.Module] = []
        for channels_in in (in_channels, out_channels):
            layers.append(
                nn.Conv2d(channels_in, out_channels, kernel_size=3, padding=1, bias=not batch_norm)
            )
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        super().__init__(*layers)


class UpBlock(nn.Module):
    """Upsample by 2, concatenate the skip connection, then a :class:`ConvBlock`."""

    def __init__(
        self, in_channels: int, out_channels: int, mode: str, batch_norm: bool, dropout: float
    ) -> None:
        super().__init__()
        if mode == "transposed":
            self.up: nn.Module = nn.ConvTranspose2d(
                in_channels, out_channels, kernel_size=2, stride=2
            )
        else:
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(in_channels, out_channels, kernel_size=1),
            )
        self.conv = ConvBlock(2 * out_channels, out_channels, batch_norm, dropout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """Upsample ``x`` and fuse it with the encoder feature map ``skip``."""
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class UNet(nn.Module):
    """U-Net returning one logit map per output channel.

    Input height and width must be multiples of ``2 ** depth``; wrap it in
    :class:`nuclei.models.padding.PadToMultiple` (as :func:`build_unet` does) for any size.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 1,
        depth: int = 4,
        base_channels: int = 32,
        upsampling: str = "transposed",
        batch_norm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if upsampling not in UPSAMPLING_MODES:
            raise ValueError(f"upsampling must be one of {UPSAMPLING_MODES}, got {upsampling!r}")
        for name, value in (("depth", depth), ("base_channels", base_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        widths = [base_channels * 2**level for level in range(depth + 1)]
        self.encoder = nn.ModuleList(
            [ConvBlock(in_channels, widths[0], batch_norm, 0.0)]
            + [ConvBlock(widths[i], widths[i + 1], batch_norm, 0.0) for i in range(depth - 1)]
        )
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = ConvBlock(widths[depth - 1], widths[depth], batch_norm, dropout)
        self.decoder = nn.ModuleList(
            UpBlock(widths[i + 1], widths[i], upsampling, batch_norm, dropout)
            for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(widths[0], out_channels, kernel_size=1)
        self.depth = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, C_in, H, W) images to (N, C_out, H, W) logits."""
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for block, skip in zip(self.decoder, reversed(skips), strict=True):
            x = block(x, skip)
        return self.head(x)


def build_unet(**settings: Any) -> nn.Module:
    """A from-scratch :class:`UNet` (``settings`` are its arguments) that accepts any input
    size: inputs are padded to its stride, ``2 ** depth``."""
    net = UNet(**settings)
    return PadToMultiple(net, 2**net.depth)
