"""The training loss: per-channel BCE (+ soft Dice), weighted over the target's channels.

A binary model is the one-channel case: its loss is the plain BCE-with-logits mean over the
scored pixels, with ``pos_weight`` on foreground pixels, to the same numbers as
``F.binary_cross_entropy_with_logits`` on those pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class LossConfig:
    """Settings of :class:`ChannelWeightedLoss` (``task.loss`` in the configs)."""

    pos_weight: float | None = None  # > 1 weighs foreground pixels more (channel 0)
    channel_weights: list[float] | None = None  # one per channel; None weighs each 1
    dice_weight: float = 0.0  # adds dice_weight x soft Dice to each channel's BCE


def soft_dice_loss(prob: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - Dice`` of probabilities against a target of the same shape, pooled."""
    intersection = (prob * target).sum()
    return 1.0 - (2.0 * intersection + 1.0) / (prob.sum() + target.sum() + 1.0)


def check_channel_weights(weights: Sequence[float] | None, channels: int) -> list[float]:
    """``weights`` as floats (None: all 1), refusing a wrong count, negatives or all zeros."""
    checked = [1.0] * channels if weights is None else [float(w) for w in weights]
    if len(checked) != channels or min(checked) < 0 or not any(checked):
        raise ValueError(
            f"task.loss.channel_weights must be {channels} non-negative number(s), not all 0; "
            f"got {list(weights) if weights is not None else None}"
        )
    return checked


class ChannelWeightedLoss(nn.Module):
    """Weighted mean over channels of BCE-with-logits (+ ``dice_weight`` x soft Dice).

    ``logits`` and ``target`` are (N, C, H, W); ``valid`` (N, 1, H, W) marks the scored
    pixels (None: all). ``pos_weight`` weighs the foreground pixels of channel 0 only.
    """

    def __init__(
        self,
        channels: int,
        pos_weight: float | None = None,
        channel_weights: Sequence[float] | None = None,
        dice_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if dice_weight < 0:
            raise ValueError(f"task.loss.dice_weight must be >= 0, got {dice_weight}")
        self.channel_weights = check_channel_weights(channel_weights, channels)
        self.dice_weight = float(dice_weight)
        weight = None if pos_weight is None else torch.tensor([float(pos_weight)])
        self.register_buffer("pos_weight", weight, persistent=False)

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The loss of a batch (a scalar)."""
        mask = None if valid is None else valid[:, 0]
        total = logits.new_zeros(())
        for channel, weight in enumerate(self.channel_weights):
            if weight == 0:
                continue
            scored, truth = logits[:, channel], target[:, channel]
            if mask is not None:
                scored, truth = scored[mask], truth[mask]
            pos_weight = self.pos_weight if channel == 0 else None
            term = F.binary_cross_entropy_with_logits(scored, truth, pos_weight=pos_weight)
            if self.dice_weight > 0:
                term = term + self.dice_weight * soft_dice_loss(torch.sigmoid(scored), truth)
            total = total + weight * term
        return total / sum(self.channel_weights)
