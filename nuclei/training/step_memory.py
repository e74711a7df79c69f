"""The memory of one training step, estimated without using any: on PyTorch's meta device.

A network built under ``torch.device("meta")`` has shapes but no data, so even one far too
large to allocate can be built. One forward pass of a meta batch records every tensor
autograd saves for the backward pass: the activations a step holds at its peak. To them
come the weights, their gradients and the optimizer's state (Adam's two moments), four
copies of the parameters. On the CPU, steps of the default U-Net with Adam (8 images of
128^2 px; of 256^2) grew the peak resident memory by 313 MiB (968 MiB); the saved
activations were 172 MiB (666 MiB) and the parameters 7.4 MiB, so the activations count
:data:`ACTIVATION_FACTOR` times (the backward pass's gradients of them, workspace): 288 MiB
(1,029 MiB) estimated.
"""

from __future__ import annotations

import torch
from torch import nn

#: Peak step memory per byte of saved activations (their gradients and workspace added).
ACTIVATION_FACTOR = 1.5
#: Copies of the parameters a step keeps: weights, gradients, the optimizer's two moments.
PARAMETER_COPIES = 4


def parameter_count(net: nn.Module) -> int:
    """The number of parameters of ``net``."""
    return sum(p.numel() for p in net.parameters())


def saved_activation_bytes(net: nn.Module, batch: int, channels: int, side: int) -> int:
    """Bytes of the tensors autograd saves in one training-mode forward pass of ``net``
    (built on the meta device) over ``batch`` images of ``side`` x ``side`` px."""
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved[id(tensor)] = tensor.numel() * tensor.element_size()
        return tensor

    images = torch.empty(batch, channels, side, side, device="meta")
    training = net.training
    net.train()
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            output = net(images)  # kept until counted: ids stay unique while the graph lives
        total = sum(saved.values())
        del output
    finally:
        net.train(training)
    return total


def training_step_bytes(net: nn.Module, batch: int, channels: int, side: int) -> int:
    """Estimated peak bytes of one training step of ``net`` (built on the meta device) on
    ``batch`` images of ``channels`` x ``side`` x ``side`` px."""
    activations = saved_activation_bytes(net, batch, channels, side)
    parameters = sum(p.numel() * p.element_size() for p in net.parameters())
    return int(ACTIVATION_FACTOR * activations + PARAMETER_COPIES * parameters)
