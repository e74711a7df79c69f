"""Images/s of the real training data loader, without a model."""

from __future__ import annotations

import time
from typing import Any

import torch

from nuclei.benchmarks.resources import synchronize
from nuclei.benchmarks.settings import Settings
from nuclei.data.config import LoaderConfig, SizeConfig
from nuclei.data.datamodule import NucleiDataModule


def time_loader(settings: Settings) -> dict[str, Any]:
    """Images/s of the ``NucleiDataModule`` train loader (defaults, synthetic set).

    Each of ``loader_epochs`` passes moves every batch to the device; its first batch
    (the iterator's start-up, workers if any) is not timed.
    """
    datamodule = NucleiDataModule(
        size=SizeConfig(image_size=settings.size), loader=LoaderConfig(batch_size=settings.batch)
    )
    started = time.perf_counter()
    datamodule.prepare_data()
    datamodule.setup("fit")
    setup_s = time.perf_counter() - started
    device = torch.device(settings.device)
    images, elapsed = 0, 0.0
    for _ in range(settings.loader_epochs):
        batches = iter(datamodule.train_dataloader())
        next(batches)  # first batch: iterator start-up (workers, if any)
        started = time.perf_counter()
        for batch in batches:
            batch["image"].to(device, non_blocking=True)
            batch["mask"].to(device, non_blocking=True)
            images += len(batch["image"])
        synchronize(device)
        elapsed += time.perf_counter() - started
    return {"img_s": images / elapsed, "setup_s": setup_s, "images": images}
