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


class OnDevice(nn.Module):
    """A network run on ``device``, taking and returning tensors on the CPU."""

    def __init__(self, net: nn.Module, device: torch.device) -> None:
        super().__init__()
        self.net = net.to(device).eval()
        self.device = device

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The network's output for ``images``, back on the CPU."""
        return self.net(images.to(self.device)).cpu()
