"""TensorBoard image grid of validation predictions: input, truth, prediction per row."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from torchvision.utils import make_grid

GRID_TAG = "val/prediction_grid"


def as_rgb(maps: torch.Tensor) -> torch.Tensor:
    """A (C, H, W) map as an RGB tile: grey for one channel, else channels as red, green..."""
    if maps.shape[0] == 1:
        return maps.expand(3, -1, -1)
    rgb = torch.zeros((3, *maps.shape[1:]), dtype=maps.dtype, device=maps.device)
    rgb[: min(3, maps.shape[0])] = maps[:3]
    return rgb


class PredictionGrid(Callback):
    """After each validation epoch, log the first ``num_images`` validation images with their
    truth (the target's channels) and the predicted probabilities to TensorBoard."""

    def __init__(self, num_images: int = 4) -> None:
        super().__init__()
        if num_images < 0:
            raise ValueError(f"num_images must be >= 0, got {num_images}")
        self.num_images = num_images
        self._kept: dict[str, torch.Tensor] | None = None

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: dict[str, Any],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Keep the first batch's first images."""
        if batch_idx == 0 and self.num_images > 0:
            keep = ("image", "mask", "target")
            self._kept = {k: v[: self.num_images] for k, v in batch.items() if k in keep}

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Predict the kept images and add the grid to every TensorBoard logger."""
        kept, self._kept = self._kept, None
        if kept is None or trainer.sanity_checking or not trainer.is_global_zero:
            return
        loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if not loggers:
            return
        images = kept["image"]
        truths = kept.get("target", kept["mask"])
        with torch.no_grad():
            probs = torch.sigmoid(pl_module(images))
        tiles = []
        for image, truth, prob in zip(images, truths, probs, strict=True):
            tiles += [image, as_rgb(truth), as_rgb(prob)]
        grid = make_grid(torch.stack(tiles).float().cpu(), nrow=3, padding=2, pad_value=1.0)
        for logger in loggers:
            logger.experiment.add_image(GRID_TAG, grid, trainer.global_step)
