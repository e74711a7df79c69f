"""EnsembleNet: the logits of the members' mean probabilities; one member or identical
members give the single network back.

Test-time augmentation: exact inversion of every flip and rotation, and plain averaging."""

import numpy as np
import pytest
import torch
from torch import nn

from nuclei.inference.averaging import (
    EnsembleNet,
    TestTimeAugmented,
    logits_of_mean,
    tta_transforms,
)
from nuclei.inference.probabilities import predict_probabilities


def small_net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3, padding=1))


def test_identical_members_equal_the_single_network() -> None:
    net = small_net(0)
    x = torch.rand(2, 3, 16, 20)
    single = net(x)
    ensemble = EnsembleNet([net, net, net])(x)
    assert ensemble.shape == single.shape
    torch.testing.assert_close(torch.sigmoid(ensemble), torch.sigmoid(single), atol=1e-6, rtol=0)
    assert torch.equal(ensemble > 0, single > 0)  # the same mask at threshold 0.5


def test_different_members_average_probabilities_not_logits() -> None:
    first, second = small_net(1), small_net(2)
    x = torch.rand(1, 3, 12, 12)
    p1, p2 = torch.sigmoid(first(x)), torch.sigmoid(second(x))
    averaged = torch.sigmoid(EnsembleNet([first, second])(x))
    torch.testing.assert_close(averaged, (p1 + p2) / 2, atol=1e-6, rtol=0)
    mean_of_logits = torch.sigmoid((first(x) + second(x)) / 2)
    assert not torch.allclose(averaged, mean_of_logits, atol=1e-4)


def test_ensemble_composes_with_test_time_augmentation() -> None:
    first, second = small_net(3), small_net(4)
    x = torch.rand(1, 3, 8, 8)
    both = torch.sigmoid(TestTimeAugmented(EnsembleNet([first, second]), "flips")(x))
    by_hand = torch.zeros_like(both)
    for dims in ((), (-1,), (-2,), (-2, -1)):
        flipped = torch.flip(x, dims) if dims else x
        for net in (first, second):
            probs = torch.sigmoid(net(flipped))
            by_hand += (torch.flip(probs, dims) if dims else probs) / 8
    torch.testing.assert_close(both, by_hand, atol=1e-6, rtol=0)


def test_nothing_to_average_is_an_error() -> None:
    with pytest.raises(ValueError, match="no probabilities"):
        logits_of_mean([])
    with pytest.raises(ValueError, match="at least one"):
        EnsembleNet([])


@pytest.mark.parametrize("size_mode", ["resize", "crop"])
def test_ensemble_through_tiling_and_resizing_is_the_mean_of_its_members(size_mode: str) -> None:
    """Tiles are blended and maps resized as probabilities, both linear: the ensemble's map is
    the mean of the members' maps, in both size modes, tiled (crop) or resized."""
    first, second = small_net(5).eval(), small_net(6).eval()
    image = (np.random.default_rng(0).random((70, 90, 3)) * 255).astype(np.uint8)
    settings = {"size_mode": size_mode, "image_size": 32, "tile": 32, "overlap": 8}
    with torch.no_grad():
        [both] = predict_probabilities(EnsembleNet([first, second]), [image], **settings)
        [one] = predict_probabilities(first, [image], **settings)
        [two] = predict_probabilities(second, [image], **settings)
    assert both.shape == (2, 70, 90)
    np.testing.assert_allclose(both, (one + two) / 2, atol=1e-5)


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
