"""Networks: output shapes for any input size, configuration options, smp offline."""

import pytest
import torch

from nuclei.models.smp import build_smp_model
from nuclei.models.unet import build_unet


@pytest.mark.parametrize("upsampling", ["transposed", "bilinear"])
@pytest.mark.parametrize("size", [(64, 64), (37, 50)])
def test_unet_keeps_input_size(upsampling: str, size: tuple[int, int]) -> None:
    net = build_unet(depth=3, base_channels=4, upsampling=upsampling, dropout=0.1)
    out = net(torch.rand(2, 3, *size))
    assert out.shape == (2, 1, *size)


def test_unet_without_batch_norm_has_biases_and_no_bn() -> None:
    net = build_unet(depth=2, base_channels=4, batch_norm=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())


def test_unet_rejects_unknown_upsampling() -> None:
    with pytest.raises(ValueError, match="upsampling must be one of"):
        build_unet(upsampling="pixelshuffle")


def test_smp_unet_builds_offline_and_freezes_encoder() -> None:
    net = build_smp_model(encoder_name="resnet18", encoder_weights=None, freeze_encoder=True)
    assert net(torch.rand(1, 3, 70, 45)).shape == (1, 1, 70, 45)
    encoder = net.net.encoder
    assert not any(p.requires_grad for p in encoder.parameters())
    assert all(p.requires_grad for p in net.net.decoder.parameters())
    net.train()
    norms = [m for m in encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms)  # frozen batch-norm statistics too
