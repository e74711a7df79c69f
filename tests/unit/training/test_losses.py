"""One loss: the binary model is the one-channel case of the channel-weighted loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nuclei.training.losses import ChannelWeightedLoss


@pytest.mark.parametrize("pos_weight", [None, 3.0])
@pytest.mark.parametrize("padded", [False, True])
def test_one_channel_is_plain_bce_to_the_last_bit(pos_weight: float | None, padded: bool) -> None:
    """Loss and gradients equal the binary U-Net's original loss, bit for bit."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 1, 37, 41, generator=generator, requires_grad=True)
    mask = (torch.rand(4, 1, 37, 41, generator=generator) > 0.6).float()
    valid = torch.rand(4, 1, 37, 41, generator=generator) > 0.2 if padded else None
    weight = None if pos_weight is None else torch.tensor([pos_weight])
    scored, target = (logits[valid], mask[valid]) if padded else (logits, mask)
    before = F.binary_cross_entropy_with_logits(scored, target, pos_weight=weight)
    (grad_before,) = torch.autograd.grad(before, logits)
    now = ChannelWeightedLoss(1, pos_weight=pos_weight)(logits, mask, valid)
    (grad_now,) = torch.autograd.grad(now, logits)
    assert torch.equal(before, now)
    assert torch.equal(grad_before, grad_now)


def test_channels_are_weighted_and_padding_is_not_scored() -> None:
    logits = torch.zeros(1, 2, 4, 4)
    target = torch.zeros(1, 2, 4, 4)
    target[:, 1] = 1.0  # channel 1 is all wrong at logit 0... as wrong as channel 0
    valid = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    loss = ChannelWeightedLoss(2, channel_weights=[1.0, 3.0])
    assert loss(logits, target, valid) == pytest.approx(float(torch.log(torch.tensor(2.0))))
    target[:, 0, :, 2:] = 1.0
    valid[..., 2:] = False  # the changed pixels are padding
    assert loss(logits, target, valid) == pytest.approx(float(torch.log(torch.tensor(2.0))))


def test_bad_weights_are_refused_with_the_key_named() -> None:
    with pytest.raises(ValueError, match=r"task\.loss\.channel_weights"):
        ChannelWeightedLoss(2, channel_weights=[1.0])
    with pytest.raises(ValueError, match=r"task\.loss\.channel_weights"):
        ChannelWeightedLoss(1, channel_weights=[0.0])
    with pytest.raises(ValueError, match=r"task\.loss\.dice_weight"):
        ChannelWeightedLoss(1, dice_weight=-1)
