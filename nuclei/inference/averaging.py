"""Averaging probabilities: several networks (an ensemble), or one network over flipped and
rotated copies of its input (test-time augmentation), as one network.

Networks here take images and return logits. :class:`EnsembleNet` returns the logits of the
mean of its members' sigmoid probabilities; :class:`TestTimeAugmented` wraps a network and
returns the logits of its probabilities averaged over flips or the 8 dihedral transforms of
its input, each mapped back before averaging. So tiling, resizing and both size modes use an
ensemble, or an augmented network, exactly as they use one network.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

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


#: ``none``: the network alone; ``flips``: identity, horizontal, vertical and both flips (4);
#: ``d4``: the 4 rotations by 90 degrees, each with and without a horizontal flip (8).
TTA_MODES: tuple[str, ...] = ("none", "flips", "d4")

Transform = tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]


def _flip(dims: tuple[int, ...]) -> Transform:
    def flip(x: torch.Tensor) -> torch.Tensor:
        return torch.flip(x, dims) if dims else x

    return flip, flip  # a flip is its own inverse


def _rotation(quarter_turns: int, mirrored: bool) -> Transform:
    def forward(x: torch.Tensor) -> torch.Tensor:
        x = torch.flip(x, (-1,)) if mirrored else x
        return torch.rot90(x, quarter_turns, dims=(-2, -1))

    def inverse(y: torch.Tensor) -> torch.Tensor:
        y = torch.rot90(y, -quarter_turns, dims=(-2, -1))
        return torch.flip(y, (-1,)) if mirrored else y

    return forward, inverse


def tta_transforms(mode: str) -> list[Transform]:
    """The (transform, inverse) pairs of ``mode`` (see :data:`TTA_MODES`), identity first."""
    if mode == "none":
        return [_flip(())]
    if mode == "flips":
        return [_flip(()), _flip((-1,)), _flip((-2,)), _flip((-2, -1))]
    if mode == "d4":
        return [_rotation(k, mirrored) for mirrored in (False, True) for k in range(4)]
    raise ValueError(f"tta must be one of {TTA_MODES}, got {mode!r}")


class TestTimeAugmented(nn.Module):
    """``net`` averaged over the transforms of ``mode``: returns the logits of the mean of
    the sigmoid probabilities, each transformed output mapped back to the input's frame."""

    __test__ = False  # a network, not a pytest test class

    def __init__(self, net: nn.Module, mode: str) -> None:
        super().__init__()
        self.net = net
        self.mode = mode
        self.transforms = tta_transforms(mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, K, H, W) of the probabilities averaged over the transforms."""
        return logits_of_mean(
            inverse(torch.sigmoid(self.net(transform(x)).float()))
            for transform, inverse in self.transforms
        )
