"""How images meet the network in a prediction: size mode, tiles, batches, device, normalisation."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from nuclei.data.config import IntensityConfig


@dataclass
class PredictionSettings:
    """How images go through the network (see :func:`nuclei.inference.maps.predict_maps`)."""

    size_mode: str
    image_size: int
    tile: int
    overlap: int
    batch_size: int
    device: torch.device
    intensity: IntensityConfig = field(default_factory=IntensityConfig)
    tta: str = "none"

    def describe(self) -> str:
        """One line for the log: the mode and its sizes."""
        if self.size_mode == "resize":
            how = f"resized to {self.image_size}x{self.image_size} and scaled back"
        else:
            how = f"native resolution, {self.tile} px tiles overlapping by {self.overlap} px"
        norm = self.intensity
        if norm.normalize == "percentile":
            how += f", normalised to the {norm.low:g}-{norm.high:g} percentiles"
        if self.tta != "none":
            how += f", test-time augmentation {self.tta}"
        return f"{how}, batches of {self.batch_size}, on {self.device}"

    @property
    def images_per_batch(self) -> int:
        """Images per forward pass: resized images batch together, a tiled one its windows."""
        return self.batch_size if self.size_mode == "resize" else 1
