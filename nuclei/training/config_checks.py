"""Training settings checked from the composed config, before any data is read.

:func:`check_training_config` refuses, each in one line naming the key and what it expects,
what cannot train: ``trainer.max_epochs`` below 1 (but -1, no limit), a learning rate that
is not a positive number, network settings its constructor refuses (a width or depth below
1, :class:`nuclei.models.unet.UNet`), training inputs smaller than the network's stride
(``data.size.image_size``, or ``data.size.crop_size`` in crop mode: each would be mostly
padding), and a training step that needs more memory than the machine has. The network is
built on PyTorch's meta device for this, shapes without data, so even one far too large to
allocate is measured, not made.

The memory of one step (:func:`training_step_bytes`) is estimated without using any. One
forward pass of a meta batch records every tensor autograd saves for the backward pass: the
activations a step holds at its peak. To them come the weights, their gradients and the
optimizer's state (Adam's two moments), four copies of the parameters. On the CPU, steps of
the default U-Net with Adam (8 images of 128^2 px; of 256^2) grew the peak resident memory
by 313 MiB (968 MiB); the saved activations were 172 MiB (666 MiB) and the parameters
7.4 MiB, so the activations count :data:`ACTIVATION_FACTOR` times (the backward pass's
gradients of them, workspace): 288 MiB (1,029 MiB) estimated.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from nuclei.data.config import SizeConfig, as_config
from nuclei.inference.network_probe import input_multiple
from nuclei.inference.windows import available_memory

log = logging.getLogger(__name__)

#: The network's keys that set its size, named when a step does not fit in memory.
SIZE_KEYS = ("base_channels", "depth", "encoder_name", "encoder_depth")
#: The network's keys that set its stride (2 ** depth).
DEPTH_KEYS = ("depth", "encoder_depth")
GiB = 2**30
#: Peak step memory per byte of saved activations (their gradients and workspace added).
ACTIVATION_FACTOR = 1.5
#: Copies of the parameters a step keeps: weights, gradients, the optimizer's two moments.
PARAMETER_COPIES = 4


class TrainingConfigError(ValueError):
    """A training setting that cannot train; the message names the key and what it expects."""


def check_training_config(cfg: DictConfig) -> None:
    """Refuse settings of a composed training config that cannot train (see the module)."""
    _check_epochs(cfg.trainer.get("max_epochs"))
    _check_learning_rate(cfg.task.optimizer.get("lr"))
    settings = OmegaConf.to_container(cfg.task.net, resolve=True)
    net = meta_network(settings)
    if net is None:
        return
    size = as_config(SizeConfig, cfg.data.size)
    side_key = "data.size.crop_size" if size.mode == "crop" else "data.size.image_size"
    side = size.crop_size if size.mode == "crop" else size.image_size
    _check_stride(net, settings, side_key, side)
    _check_memory(net, settings, cfg, side_key, side)


def _check_epochs(epochs: Any) -> None:
    if epochs is None or (type(epochs) is int and (epochs >= 1 or epochs == -1)):
        return
    raise TrainingConfigError(
        "trainer.max_epochs must be an integer >= 1, or -1 for no limit (early stopping, "
        f"trainer.max_steps or trainer.max_time then end the run), got {epochs!r}"
    )


def _check_learning_rate(lr: Any) -> None:
    number = isinstance(lr, int | float) and not isinstance(lr, bool)
    if lr is None or (number and math.isfinite(lr) and lr > 0):
        return
    raise TrainingConfigError(
        f"optimizer.lr must be a number > 0 (the learning rate, e.g. 1e-3), got {lr!r}"
    )


def meta_network(settings: Mapping[str, Any]) -> nn.Module | None:
    """The network of ``settings`` (``model``, with its ``_target_``) built on the meta device
    without pretrained weights; TrainingConfigError for arguments its builder refuses, None
    (and a warning) when it cannot be built there."""
    settings = dict(settings)
    if settings.get("encoder_weights") is not None:
        settings["encoder_weights"] = None  # the same shapes, nothing downloaded
    try:
        with torch.device("meta"):
            return instantiate(settings)
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, ValueError | TypeError):
            raise TrainingConfigError(_model_message(cause, settings)) from None
        log.warning("Network settings not checked: %s", exc)
    except (RuntimeError, NotImplementedError) as exc:
        log.warning("Network settings not checked: %s", exc)
    return None


def _model_message(error: Exception, settings: Mapping[str, Any]) -> str:
    """``model.<key> ...`` when the builder's message starts with one of its keys."""
    message = " ".join(str(error).split())
    if message.split(" ", 1)[0] in settings:
        return f"model.{message}"
    return f"model ({settings.get('_target_')}): {message}"


def _network_name(settings: Mapping[str, Any]) -> str:
    key = next((k for k in DEPTH_KEYS if k in settings), None)
    return f"model.{key}={settings[key]}" if key else str(settings.get("_target_"))


def _check_stride(net: nn.Module, settings: Mapping[str, Any], side_key: str, side: int) -> None:
    stride = input_multiple(net)
    if stride > side:
        raise TrainingConfigError(
            f"{side_key}={side} is smaller than the network's stride, {stride} px "
            f"({_network_name(settings)}): every training input would be padded to {stride} "
            f"px; use {side_key} >= {stride} or a shallower network"
        )


def memory_available(trainer: Mapping[str, Any]) -> tuple[int | None, str]:
    """Bytes of memory a training process of ``trainer`` (the Trainer's config) may use, and
    where: a GPU's free memory, else the machine's available memory (None if unknown)."""
    accelerator = str(trainer.get("accelerator", "auto"))
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise TrainingConfigError(
            f"trainer.accelerator={accelerator}, but PyTorch finds no GPU here; use trainer=cpu "
            "(or trainer.accelerator=auto)"
        )
    gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if not gpu:
        return available_memory(), "on this machine"
    if any(word in str(trainer.get("strategy")) for word in ("fork", "notebook")):
        return None, "on the GPU"  # CUDA must not start before the fork
    return torch.cuda.mem_get_info()[0], "on the GPU"


def _check_memory(
    net: nn.Module, settings: Mapping[str, Any], cfg: DictConfig, side_key: str, side: int
) -> None:
    available, where = memory_available(cfg.trainer)
    if available is None:
        return
    devices = cfg.trainer.get("devices")
    processes = devices if where == "on this machine" and type(devices) is int else 1
    batch = cfg.data.loader.batch_size
    channels = settings.get("in_channels", 3)
    needed = training_step_bytes(net, batch, channels, side) * max(processes, 1)
    if needed > available:
        network = ", ".join(f"model.{k}" for k in SIZE_KEYS if k in settings)
        raise TrainingConfigError(
            f"a training step needs about {needed / GiB:.2f} GiB "
            f"(data.loader.batch_size={batch} images of {side}x{side} px, {side_key}={side}, "
            f"{parameter_count(net) / 1e6:.1f}M parameters"
            + (f", {processes} processes" if processes > 1 else "")
            + f"), more than the {available / GiB:.2f} GiB of memory available {where}; "
            f"lower data.loader.batch_size, {side_key} or the network ({network})"
        )


def parameter_count(net: nn.Module) -> int:
    """The number of parameters of ``net``."""
    return sum(p.numel() for p in net.parameters())


def saved_activation_bytes(net: nn.Module, batch: int, channels: int, side: int) -> int:
    """Bytes of the tensors autograd saves in one training-mode forward pass of ``net``
    (built on the meta device) over ``batch`` images of ``side`` x ``side`` px."""
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved[id(tensor)] = tensor.numel() * tensor.element_size()
        return tensor

    images = torch.empty(batch, channels, side, side, device="meta")
    training = net.training
    net.train()
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            output = net(images)  # kept until counted: ids stay unique while the graph lives
        total = sum(saved.values())
        del output
    finally:
        net.train(training)
    return total


def training_step_bytes(net: nn.Module, batch: int, channels: int, side: int) -> int:
    """Estimated peak bytes of one training step of ``net`` (built on the meta device) on
    ``batch`` images of ``channels`` x ``side`` x ``side`` px."""
    activations = saved_activation_bytes(net, batch, channels, side)
    parameters = sum(p.numel() * p.element_size() for p in net.parameters())
    return int(ACTIVATION_FACTOR * activations + PARAMETER_COPIES * parameters)
