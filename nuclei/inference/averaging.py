"""Averaging probabilities: several networks (an ensemble) as one network.

Networks here take images and return logits. :class:`EnsembleNet` returns the logits of the
mean of its members' sigmoid probabilities, so tiling, resizing, test-time augmentation and
both size modes use an ensemble exactly as they use one network.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn


def logits_of_mean(probabilities: Iterable[torch.Tensor]) -> torch.Tensor:
    """The logits of the mean of same-shaped probability tensors (clamped away from 0 and 1)."""
    total: torch.Tensor | None = None
    count = 0
    for probs in probabilities:
        total = probs if total is None else total + probs
        count += 1
    if total is None:
        raise ValueError("no probabilities to average")
    return torch.logit(total / count, eps=1e-7)


class EnsembleNet(nn.Module):
    """Several networks with the same input and output layout, as one: the logits of their
    averaged sigmoid probabilities."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one network")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, K, H, W) of the members' mean probabilities."""
        return logits_of_mean(torch.sigmoid(member(x).float()) for member in self.members)
