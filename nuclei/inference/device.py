"""Which device a prediction runs on."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

#: The device names a command takes.
DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


class DeviceError(RuntimeError):
    """The device asked for is not a device, or is not on this machine."""


def resolve_device(name: str) -> torch.device:
    """``auto``: the GPU when there is one, else the CPU; otherwise the named device.

    Raises :class:`DeviceError` for a name that is no device, or a GPU this machine lacks.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise DeviceError(f"device={name}: not a device; expected {DEVICE_CHOICES}") from exc
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DeviceError(
                f"device={name}: no CUDA GPU is available here (torch {torch.__version__}, "
                f"CUDA {torch.version.cuda or 'not built in'}); use device=cpu or device=auto"
            )
        if device.index is not None and device.index >= count:
            raise DeviceError(
                f"device={name}: this machine has {count} CUDA GPU(s), numbered from 0; "
                f"use device=cuda:0 .. cuda:{count - 1}, device=cpu or device=auto"
            )
    elif device.type != "cpu":
        raise DeviceError(f"device={name}: not supported; expected {DEVICE_CHOICES}")
    return device


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
