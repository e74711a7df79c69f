"""Test-time augmentation: exact inversion of every flip and rotation, and plain averaging."""

import pytest
import torch
from torch import nn

from nuclei.inference.tta import TestTimeAugmented, tta_transforms


class PositionNet(nn.Module):
    """Not flip-invariant: logits = first channel + a ramp that grows to the right."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ramp = torch.linspace(-1.0, 1.0, x.shape[-1]).expand(x.shape[-2], -1)
        return x[:, :1] * 2.0 + ramp


class PixelNet(nn.Module):
    """Flip- and rotation-invariant: a per-pixel function of the input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, :1] - 0.5) * 6.0


@pytest.mark.parametrize("mode", ["flips", "d4"])
def test_every_transform_is_inverted_exactly(mode: str) -> None:
    x = torch.rand(2, 3, 8, 8)
    for transform, inverse in tta_transforms(mode):
        assert torch.equal(inverse(transform(x)), x)
    assert len(tta_transforms(mode)) == {"flips": 4, "d4": 8}[mode]


@pytest.mark.parametrize("mode", ["none", "flips", "d4"])
def test_tta_of_an_invariant_network_is_the_network(mode: str) -> None:
    x = torch.rand(2, 3, 12, 12)
    expected = torch.sigmoid(PixelNet()(x))
    torch.testing.assert_close(torch.sigmoid(TestTimeAugmented(PixelNet(), mode)(x)), expected)


def test_tta_of_a_position_dependent_network_averages_the_mapped_back_outputs() -> None:
    x = torch.rand(1, 3, 6, 6)
    net = PositionNet()
    # By hand: under a horizontal flip the ramp runs the other way in the input's frame, so
    # flips average it out (the vertical flips keep it); the image term is where it was.
    image_term = x[:, :1] * 2.0
    ramp = torch.linspace(-1.0, 1.0, 6).expand(6, -1)
    by_hand = (
        2 * torch.sigmoid(image_term + ramp) + 2 * torch.sigmoid(image_term + ramp.flip(-1))
    ) / 4
    flipped = torch.sigmoid(TestTimeAugmented(net, "flips")(x))
    torch.testing.assert_close(flipped, by_hand)
    assert not torch.allclose(flipped, torch.sigmoid(net(x)))  # the average does change it
    # d4 on a square image: the ramp turns with each rotation, mapped back the same way.
    rotations = [torch.rot90(ramp, k, dims=(-2, -1)) for k in range(4)]
    d4_by_hand = (
        sum(
            torch.sigmoid(image_term + r) + torch.sigmoid(image_term + r.flip(-1))
            for r in rotations
        )
        / 8
    )
    torch.testing.assert_close(torch.sigmoid(TestTimeAugmented(net, "d4")(x)), d4_by_hand)


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="tta must be one of"):
        TestTimeAugmented(PixelNet(), "mirror")
