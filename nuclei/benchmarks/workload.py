"""What the training measurements run on: the network, its optimizer and in-memory batches."""

from __future__ import annotations

import torch

from nuclei.benchmarks.settings import Settings
from nuclei.models.unet import build_unet

LR = 2e-3  # conf/optimizer/adam.yaml
DISTINCT_BATCHES = 4


def build_net(settings: Settings) -> torch.nn.Module:
    """The benchmarked network, with the same initial weights in every measurement."""
    torch.manual_seed(0)
    return build_unet(depth=settings.depth, base_channels=settings.base)


def make_batches(settings: Settings) -> list[dict[str, torch.Tensor]]:
    """A few distinct in-memory batches like the data module's: images in [0, 1], 0/1 masks."""
    generator = torch.Generator().manual_seed(0)
    side, batch = settings.size, settings.batch
    batches = []
    for _ in range(DISTINCT_BATCHES):
        image = torch.rand((batch, 3, side, side), generator=generator)
        mask = (torch.rand((batch, 1, side, side), generator=generator) > 0.8).float()
        batches.append({"image": image, "mask": mask})
    return batches
