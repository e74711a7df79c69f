"""Which device a prediction runs on."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def resolve_device(name: str) -> torch.device:
    """``auto``: the GPU when there is one, else the CPU; otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def default_device(
    net: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor
) -> torch.device:
    """The device of the network's weights (a module), else the image's."""
    if isinstance(net, nn.Module):
        for tensor in (*net.parameters(), *net.buffers()):
            return tensor.device
    return image.device
