"""Let networks with a fixed stride accept any input size: pad, run, crop back."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PadToMultiple(nn.Module):
    """Wraps a network whose input sides must be multiples of ``multiple``.

    The input is reflect-padded on the bottom/right up to the next multiple and the
    output is cropped back, so the wrapped network accepts any height and width.
    """

    def __init__(self, net: nn.Module, multiple: int) -> None:
        super().__init__()
        self.net = net
        self.multiple = multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad ``x`` (N, C, H, W), run the network, crop its output to (H, W)."""
        height, width = x.shape[-2:]
        pad_h = -height % self.multiple
        pad_w = -width % self.multiple
        if pad_h == 0 and pad_w == 0:
            return self.net(x)
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        out = self.net(F.pad(x, (0, pad_w, 0, pad_h), mode=mode))
        return out[..., :height, :width]
