"""How images meet the network in a prediction: size mode, tiles, batches, device, normalisation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from nuclei.data.config import IntensityConfig
from nuclei.inference.maps import Forward, network_input, predict_maps


@dataclass
class PredictionSettings:
    """How images go through the network (see :func:`nuclei.inference.maps.predict_maps`)."""

    size_mode: str
    image_size: int
    tile: int | None  # crop mode; None: planned from the memory budget
    overlap: int | None  # crop mode; None: from the network's receptive field
    batch_size: int
    device: torch.device
    intensity: IntensityConfig = field(default_factory=IntensityConfig)
    tta: str = "none"
    memory_budget: float | None = None  # bytes per forward pass; None: the device's default

    def describe(self) -> str:
        """One line for the log: the mode and its sizes."""
        if self.size_mode == "resize":
            how = f"resized to {self.image_size}x{self.image_size} and scaled back"
        elif self.tile is None:
            how = "native resolution, windows planned from the memory budget"
        else:
            overlap = "the receptive field" if self.overlap is None else f"{self.overlap} px"
            how = f"native resolution, {self.tile} px tiles overlapping by {overlap}"
        norm = self.intensity
        if norm.normalize == "percentile":
            how += f", normalised to the {norm.low:g}-{norm.high:g} percentiles"
        if self.tta != "none":
            how += f", test-time augmentation {self.tta}"
        return f"{how}, batches of {self.batch_size}, on {self.device}"

    @property
    def images_per_batch(self) -> int:
        """Images handed to the network at once (resized ones batch together; native ones
        share forward passes window by window, as many as the memory budget allows; on the
        CPU, where a pass holds one window of useful size, one at a time: each image then goes
        to postprocessing as soon as its maps are ready)."""
        if self.size_mode == "crop" and self.device.type == "cpu":
            return 1
        return self.batch_size

    def network_input(self, image: np.ndarray) -> torch.Tensor:
        """What the network sees of an (H, W, 3) uint8 image before batching, these settings'
        way (:func:`~nuclei.inference.maps.network_input`): work a DataLoader worker can do."""
        return network_input(image, self.size_mode, self.image_size, self.intensity)

    def maps(
        self,
        net: Forward,
        images: Sequence[np.ndarray],
        device: torch.device | None = None,
        inputs: Sequence[torch.Tensor] | None = None,
    ) -> list[np.ndarray]:
        """(C, H, W) probability maps of (H, W, 3) uint8 images, run these settings' way
        (:func:`~nuclei.inference.maps.predict_maps`) on ``device`` (default: ``self.device``);
        ``inputs``: their :meth:`network_input` tensors, when made beforehand."""
        return predict_maps(
            net,
            images,
            size_mode=self.size_mode,
            image_size=self.image_size,
            tile=self.tile,
            overlap=self.overlap,
            batch_size=self.batch_size,
            device=self.device if device is None else device,
            intensity=self.intensity,
            memory_budget=self.memory_budget,
            inputs=inputs,
        )
