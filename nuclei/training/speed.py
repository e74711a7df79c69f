"""Speed options of a run: ``torch.compile`` and the channels_last memory format.

Neither changes what is computed, only how fast (results agree to float rounding):

* ``channels_last``: the network's 4-D weights and every input batch are stored NHWC,
  the layout oneDNN (CPU) and cuDNN (tensor cores) convolutions prefer;
* ``compile``: :meth:`torch.nn.Module.compile` of the network, in place, so the
  checkpoint's ``state_dict`` keys stay those of the eager network (no ``_orig_mod.``)
  and ``nuclei-eval`` / ``nuclei-predict`` load it unchanged. Compiling costs start-up
  time (on a 2-core CPU about a minute for the training step, tens of seconds more for
  each evaluation shape) that a short run does not win back; see docs/speed-and-scaling.md
  and ``scripts/benchmark.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass(frozen=True)
class SpeedOptions:
    """The ``speed:`` section of ``train.yaml``."""

    compile: bool = False
    compile_mode: str | None = None
    channels_last: bool = False

    def __post_init__(self) -> None:
        if self.compile_mode not in COMPILE_MODES:
            raise ValueError(
                f"speed.compile_mode must be one of {COMPILE_MODES}, got {self.compile_mode!r}"
            )

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> SpeedOptions:
        """Options from a config section (missing keys keep their defaults; unknown keys fail)."""
        given = dict(section or {})
        unknown = sorted(set(given) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown speed option(s): {', '.join(unknown)}")
        return cls(**given)

    def trainer_kwargs(self) -> dict[str, Any]:
        """Trainer arguments these options need.

        A compiled network is traced again for every change of grad mode. Validation during
        ``fit`` runs under ``no_grad``, ``trainer.validate`` under ``inference_mode``:
        running both under ``no_grad`` saves one compilation (tens of seconds on a CPU).
        """
        return {"inference_mode": False} if self.compile else {}


def memory_format(channels_last: bool) -> torch.memory_format:
    """The memory format for images and weights: channels_last (NHWC) or contiguous (NCHW)."""
    return torch.channels_last if channels_last else torch.contiguous_format


def apply_speed_options(net: nn.Module, options: SpeedOptions) -> nn.Module:
    """Convert ``net`` to channels_last and/or compile it, in place; returns ``net``.

    Inputs must be converted by the caller (:class:`nuclei.training.task.SegmentationTask`
    converts them in ``forward``).
    """
    if options.channels_last:
        net.to(memory_format=torch.channels_last)
    if options.compile:
        net.compile(mode=options.compile_mode)
        log.info("Network compiled with torch.compile (mode=%s)", options.compile_mode)
    return net
