"""The settings every measurement of a benchmark shares, and their command-line flags."""

from __future__ import annotations

import argparse
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

import torch


def default_device() -> str:
    """``cuda`` where a GPU is available, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class Settings:
    """Network, input, step counts and prediction sizes; each field is a ``--flag``."""

    base: int = field(default=32, metadata={"help": "U-Net base width"})
    depth: int = field(default=4, metadata={"help": "U-Net depth"})
    size: int = field(default=128, metadata={"help": "input side (pixels)"})
    batch: int = field(default=16, metadata={"help": "batch size"})
    steps: int = field(default=8, metadata={"help": "timed steps of a run alone"})
    warmup: int = field(default=2, metadata={"help": "untimed steps before timing"})
    chunk: int = field(default=2, metadata={"help": "steps per interleaved chunk"})
    repeats: int = field(default=6, metadata={"help": "Lightning/plain chunk pairs"})
    device: str = field(default_factory=default_device)
    predict_size: int = field(default=1024, metadata={"help": "predicted image side"})
    tile: int = field(default=512, metadata={"help": "tile side for prediction"})
    overlap: int = field(default=64, metadata={"help": "tile overlap for prediction"})
    predict_repeats: int = 3
    loader_epochs: int = 2
    slow_steps: int = field(
        default=1, metadata={"help": "timed bf16 steps on a CPU (after 1 warm-up)"}
    )

    def __post_init__(self) -> None:
        if min(self.warmup, self.steps, self.chunk, self.repeats) < 1:
            raise ValueError("--warmup, --steps, --chunk and --repeats must be >= 1")

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> Settings:
        """The settings among parsed command-line options (other options are ignored)."""
        return cls(**{setting.name: getattr(args, setting.name) for setting in fields(cls)})


def add_setting_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one ``--flag`` per :class:`Settings` field, with its default and help."""
    for setting in fields(Settings):
        default: Any = setting.default
        if default is MISSING:
            default = setting.default_factory()  # type: ignore[misc]
        kind = int if isinstance(default, int) else None
        parser.add_argument(
            f"--{setting.name.replace('_', '-')}",
            type=kind,
            default=default,
            help=setting.metadata.get("help"),
        )
