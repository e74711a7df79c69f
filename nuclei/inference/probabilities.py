"""Probabilities of whole images, the way the model was trained, and where the network runs.

:class:`PredictionSettings` say how images meet the network: the size mode, chosen once as a
strategy (:func:`choose_size_mode`: :class:`ResizeMode` or :class:`CropMode`), batches,
device, normalisation. Resize mode resizes every image like the data module and scales the
probabilities back to its size (:func:`resized_predict`); crop mode, for a model trained on
native-resolution crops, runs images at their own size over windows planned from a memory
budget (:mod:`nuclei.inference.windows`): whole images when they fit, else the largest
windows that do, overlapping by the network's receptive field so that blending them is exact
(:func:`native_probabilities`).

The device: :func:`resolve_device` turns a command's ``device=`` into a ``torch.device``
(:class:`DeviceError` for one this machine lacks), and :func:`trainer_device` into the
``accelerator`` and ``devices`` of a Lightning Trainer, for every command that runs one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from nuclei.data.batches import scale_to_size
from nuclei.data.config import SIZE_MODES, IntensityConfig
from nuclei.data.decode import resize_image
from nuclei.data.intensity import normalize_image
from nuclei.inference.network_probe import Forward
from nuclei.inference.windows import Activation, choose_windows, default_device, tiled_predict

#: The device names a command takes.
DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


class DeviceError(RuntimeError):
    """The device asked for is not a device, or is not on this machine."""


def resolve_device(name: str) -> torch.device:
    """``auto``: the GPU when there is one, else the CPU; otherwise the named device.

    Raises :class:`DeviceError` for a name that is no device, or a GPU this machine lacks.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise DeviceError(f"device={name}: not a device; expected {DEVICE_CHOICES}") from exc
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DeviceError(
                f"device={name}: no CUDA GPU is available here (torch {torch.__version__}, "
                f"CUDA {torch.version.cuda or 'not built in'}); use device=cpu or device=auto"
            )
        if device.index is not None and device.index >= count:
            raise DeviceError(
                f"device={name}: this machine has {count} CUDA GPU(s), numbered from 0; "
                f"use device=cuda:0 .. cuda:{count - 1}, device=cpu or device=auto"
            )
    elif device.type != "cpu":
        raise DeviceError(f"device={name}: not supported; expected {DEVICE_CHOICES}")
    return device


def trainer_device(device: str | torch.device) -> dict[str, Any]:
    """The Trainer ``accelerator`` and ``devices`` that run on one device.

    ``device``: a ``torch.device`` (a GPU is ``gpu`` with its index), or a command's name of
    one (auto, cpu, cuda, cuda:N), checked by :func:`resolve_device` first (a device this
    machine lacks: :class:`DeviceError`); ``auto`` is left to Lightning (``accelerator``
    ``auto``, one device).
    """
    if not isinstance(device, torch.device):
        name = str(device)
        if name == "auto":
            return {"accelerator": "auto", "devices": 1}
        device = resolve_device(name)
        if device.type == "cpu" and device.index is not None:
            raise DeviceError(f"device must be {DEVICE_CHOICES}, got {name!r}")
    if device.type == "cuda":
        return {"accelerator": "gpu", "devices": [device.index or 0]}
    return {"accelerator": device.type, "devices": 1}


class OnDevice(nn.Module):
    """A network run on ``device``, taking and returning tensors on the CPU."""

    def __init__(self, net: nn.Module, device: torch.device) -> None:
        super().__init__()
        self.net = net.to(device).eval()
        self.device = device

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The network's output for ``images``, back on the CPU."""
        return self.net(images.to(self.device)).cpu()


def to_tensor(image: np.ndarray, intensity: IntensityConfig | None = None) -> torch.Tensor:
    """An (H, W, 3) uint8 image as the (3, H, W) float tensor the network sees, normalised
    as in training (:func:`nuclei.data.intensity.normalize_image`; default: values / 255)."""
    normalized = normalize_image(image, intensity or IntensityConfig())
    return torch.from_numpy(np.ascontiguousarray(normalized, dtype=np.float32)).permute(2, 0, 1)


def resized_input(
    image: np.ndarray, size: int, intensity: IntensityConfig | None = None
) -> torch.Tensor:
    """The (3, size, size) tensor the network sees of an (H, W, 3) uint8 image in resize mode:
    resized as in training (:func:`nuclei.data.decode.resize_image`), then :func:`to_tensor`."""
    return to_tensor(resize_image(image, size), intensity)


@torch.inference_mode()
def resized_predict(
    net: Forward,
    images: Sequence[np.ndarray],
    size: int,
    batch_size: int = 8,
    activation: Activation = torch.sigmoid,
    device: torch.device | str | None = None,
    intensity: IntensityConfig | None = None,
    inputs: Sequence[torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    """Probabilities (K, H, W) per (H, W, 3) uint8 image, predicted at ``size x size``.

    Each image is resized and normalised as in training (:func:`resized_input`; ``inputs``:
    those tensors, made beforehand), batches of up to ``batch_size`` go through the network,
    and each output is scaled back to its image's own size
    (:func:`nuclei.data.batches.scale_to_size`, as validation scores it).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    results: list[torch.Tensor] = []
    for first in range(0, len(images), batch_size):
        chunk = images[first : first + batch_size]
        batch = torch.stack(
            [resized_input(img, size, intensity) for img in chunk]
            if inputs is None
            else list(inputs[first : first + batch_size])
        )
        device_ = torch.device(device) if device is not None else default_device(net, batch)
        out = net(batch.to(device_))
        if activation is not None:
            out = activation(out)
        for img, prob in zip(chunk, out.float(), strict=True):
            results.append(scale_to_size(prob, img.shape[:2]).cpu())
    return results


def native_probabilities(
    net: Forward,
    images: Sequence[np.ndarray],
    tile: int | None = None,
    overlap: int | None = None,
    batch_size: int = 8,
    device: torch.device | str | None = None,
    intensity: IntensityConfig | None = None,
    memory_budget: float | None = None,
    inputs: Sequence[torch.Tensor] | None = None,
) -> list[np.ndarray]:
    """Probabilities at native resolution through :func:`tiled_predict` (``inputs``: the
    images' :func:`to_tensor` tensors, made beforehand).

    Images of one size share a :class:`~nuclei.inference.windows.WindowPlan`
    (:func:`choose_windows`) and go through the network together, their windows batched
    across images, as many images at once as fill a forward pass; each image's
    probabilities are those it gets alone.
    """
    by_size: dict[tuple[int, ...], list[int]] = {}
    for index, image in enumerate(images):
        by_size.setdefault(tuple(image.shape), []).append(index)
    maps: list[np.ndarray | None] = [None] * len(images)

    def tensor(i: int) -> torch.Tensor:
        return to_tensor(images[i], intensity) if inputs is None else inputs[i]

    for indices in by_size.values():
        first = tensor(indices[0])
        where = torch.device(device) if device is not None else default_device(net, first)
        plan = choose_windows(net, first, tile, overlap, batch_size, memory_budget, where)
        for start in range(0, len(indices), plan.images_per_pass):
            chunk = indices[start : start + plan.images_per_pass]
            batch = torch.stack([first if i == indices[0] else tensor(i) for i in chunk])
            probs = tiled_predict(
                net,
                batch,
                plan.tile,
                plan.overlap,
                plan.batch_size,
                device=where,
                margin=plan.margin,
                multiple=plan.multiple,
            )
            for i, prob in zip(chunk, probs, strict=True):
                maps[i] = prob.numpy()
    return [m for m in maps if m is not None]


@dataclass(frozen=True)
class ResizeMode:
    """``resize``: every image resized to ``image_size`` square, as the model was trained,
    and its probabilities scaled back to the image's own size."""

    image_size: int
    name: ClassVar[str] = "resize"

    def describe(self) -> str:
        """How images meet the network, for the log."""
        return f"resized to {self.image_size}x{self.image_size} and scaled back"

    def images_per_batch(self, batch_size: int, device: torch.device) -> int:
        """Images handed to the network at once: resized ones batch together."""
        return batch_size

    def network_input(
        self, image: np.ndarray, intensity: IntensityConfig | None = None
    ) -> torch.Tensor:
        """The image resized and normalised (:func:`resized_input`)."""
        return resized_input(image, self.image_size, intensity)

    def probabilities(
        self,
        net: Forward,
        images: Sequence[np.ndarray],
        batch_size: int = 8,
        device: torch.device | str | None = None,
        intensity: IntensityConfig | None = None,
        memory_budget: float | None = None,
        inputs: Sequence[torch.Tensor] | None = None,
    ) -> list[np.ndarray]:
        """:func:`resized_predict` at ``image_size`` (``memory_budget`` has no use here)."""
        probs = resized_predict(
            net,
            images,
            self.image_size,
            batch_size,
            device=device,
            intensity=intensity,
            inputs=inputs,
        )
        return [p.numpy() for p in probs]


@dataclass(frozen=True)
class CropMode:
    """``crop`` (trained on native-resolution crops): images at their own size, over windows
    planned from the memory budget unless ``tile`` (and ``overlap``) fix them."""

    tile: int | None = None
    overlap: int | None = None
    name: ClassVar[str] = "crop"

    def describe(self) -> str:
        """How images meet the network, for the log."""
        if self.tile is None:
            return "native resolution, windows planned from the memory budget"
        overlap = "the receptive field" if self.overlap is None else f"{self.overlap} px"
        return f"native resolution, {self.tile} px tiles overlapping by {overlap}"

    def images_per_batch(self, batch_size: int, device: torch.device) -> int:
        """Images handed to the network at once: they share forward passes window by window,
        as many as the memory budget allows; on the CPU, where a pass holds one window of
        useful size, one at a time (each image then goes to postprocessing as soon as its
        probabilities are ready)."""
        return 1 if device.type == "cpu" else batch_size

    def network_input(
        self, image: np.ndarray, intensity: IntensityConfig | None = None
    ) -> torch.Tensor:
        """The image normalised at its own size (:func:`to_tensor`)."""
        return to_tensor(image, intensity)

    def probabilities(
        self,
        net: Forward,
        images: Sequence[np.ndarray],
        batch_size: int = 8,
        device: torch.device | str | None = None,
        intensity: IntensityConfig | None = None,
        memory_budget: float | None = None,
        inputs: Sequence[torch.Tensor] | None = None,
    ) -> list[np.ndarray]:
        """:func:`native_probabilities` with this mode's windows."""
        return native_probabilities(
            net,
            images,
            self.tile,
            self.overlap,
            batch_size,
            device,
            intensity,
            memory_budget,
            inputs,
        )


#: A size mode's strategy: what the network sees of an image, and how its probabilities
#: come back at the image's own size.
SizeMode = ResizeMode | CropMode


def choose_size_mode(
    name: str,
    image_size: int | None = None,
    tile: int | None = None,
    overlap: int | None = None,
) -> SizeMode:
    """The strategy of the size mode ``name`` (one of
    :data:`~nuclei.data.config.SIZE_MODES`) with its sizes: the one place a size mode is
    checked (ValueError: an unknown mode, or resize mode without ``image_size``)."""
    if name not in SIZE_MODES:
        raise ValueError(f"size_mode must be one of {SIZE_MODES}, got {name!r}")
    if name == ResizeMode.name:
        if not image_size:
            raise ValueError("size_mode=resize needs image_size (not in the stored config)")
        return ResizeMode(int(image_size))
    return CropMode(tile, overlap)


def predict_probabilities(
    net: Forward,
    images: Sequence[np.ndarray],
    size_mode: str = "resize",
    image_size: int = 128,
    tile: int | None = None,
    overlap: int | None = None,
    batch_size: int = 8,
    device: torch.device | str | None = None,
    intensity: IntensityConfig | None = None,
    memory_budget: float | None = None,
    inputs: Sequence[torch.Tensor] | None = None,
) -> list[np.ndarray]:
    """Probabilities (C, H, W) float32 per (H, W, 3) uint8 image, the way it was trained.

    Channel 0 is the foreground; a border or distance model adds its second channel.
    ``size_mode="resize"``: :func:`resized_predict` at ``image_size``; ``"crop"`` (trained on
    native-resolution crops): :func:`native_probabilities`, windows planned from
    ``memory_budget`` (bytes per forward pass; None: the device's default) unless ``tile`` and
    ``overlap`` say otherwise. Each image is normalised as ``intensity`` says, like the
    training images (default: values / 255). ``batch_size`` caps the images (resize) or
    windows (crop) per forward pass. ``inputs``: the images' network inputs
    (:meth:`PredictionSettings.network_input`), made beforehand (in a DataLoader worker,
    say), with the same settings.
    """
    mode = choose_size_mode(size_mode, image_size, tile, overlap)
    return mode.probabilities(net, images, batch_size, device, intensity, memory_budget, inputs)


@dataclass
class PredictionSettings:
    """How images go through the network (see :func:`predict_probabilities`).

    ``size_mode`` (with ``image_size``, ``tile`` and ``overlap``) is made into its strategy
    once, when the settings are made (:attr:`mode`, checked by :func:`choose_size_mode`).
    """

    size_mode: str
    image_size: int
    tile: int | None  # crop mode; None: planned from the memory budget
    overlap: int | None  # crop mode; None: from the network's receptive field
    batch_size: int
    device: torch.device
    intensity: IntensityConfig = field(default_factory=IntensityConfig)
    tta: str = "none"
    memory_budget: float | None = None  # bytes per forward pass; None: the device's default

    def __post_init__(self) -> None:
        self._mode = choose_size_mode(self.size_mode, self.image_size, self.tile, self.overlap)

    @property
    def mode(self) -> SizeMode:
        """The size mode's strategy."""
        return self._mode

    def describe(self) -> str:
        """One line for the log: the mode and its sizes."""
        how = self.mode.describe()
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
        to postprocessing as soon as its probabilities are ready)."""
        return self.mode.images_per_batch(self.batch_size, self.device)

    def network_input(self, image: np.ndarray) -> torch.Tensor:
        """What the network sees of an (H, W, 3) uint8 image before batching, these settings'
        way (resized and normalised, or normalised at its own size): work a DataLoader worker
        can do."""
        return self.mode.network_input(image, self.intensity)

    def probabilities(
        self,
        net: Forward,
        images: Sequence[np.ndarray],
        device: torch.device | None = None,
        inputs: Sequence[torch.Tensor] | None = None,
    ) -> list[np.ndarray]:
        """(C, H, W) probabilities of (H, W, 3) uint8 images, run these settings' way on
        ``device`` (default: ``self.device``); ``inputs``: their :meth:`network_input`
        tensors, when made beforehand."""
        return self.mode.probabilities(
            net,
            images,
            self.batch_size,
            self.device if device is None else device,
            self.intensity,
            self.memory_budget,
            inputs,
        )
