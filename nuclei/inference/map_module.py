"""The network's part of a prediction as a LightningModule, for ``trainer.predict``.

:class:`ProbabilityMaps` runs a trained network (one checkpoint, an ensemble, with or without
test-time augmentation) on batches of :class:`~nuclei.inference.predict_data.ServedImage` the
way the run was trained (:func:`nuclei.inference.maps.predict_maps`: resized, or tiled at
native resolution) on whatever device the Trainer gave this process. The Trainer shares the
images out among its processes (each image to one of them) and the prediction writer
callback postprocesses and writes them.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import numpy as np
from torch import nn

from nuclei.inference.image_files import LoadedImage
from nuclei.inference.predict_data import ServedImage
from nuclei.inference.settings import PredictionSettings


@dataclass
class PredictedImage:
    """One loaded image with its probability maps (C, H, W), or its error when unreadable."""

    loaded: LoadedImage
    maps: np.ndarray | None


class ProbabilityMaps(L.LightningModule):
    """Probability maps of image files, by a network with its prediction settings."""

    def __init__(self, net: nn.Module, settings: PredictionSettings) -> None:
        super().__init__()
        self.net = net.eval()
        self.settings = settings

    def predict_step(
        self, batch: list[ServedImage], batch_idx: int, dataloader_idx: int = 0
    ) -> list[PredictedImage]:
        """Maps of the readable images of ``batch`` (from the network inputs the DataLoader
        workers made, when they did); unreadable ones pass through unmapped."""
        readable = [item for item in batch if item.loaded.error is None]
        images = [item.loaded.image for item in readable]
        inputs = [item.network_input for item in readable]
        prepared = all(tensor is not None for tensor in inputs)
        maps = self.settings.maps(self.net, images, self.device, inputs if prepared else None)
        by_id = {item.loaded.image_id: m for item, m in zip(readable, maps, strict=True)}
        return [PredictedImage(item.loaded, by_id.get(item.loaded.image_id)) for item in batch]
