"""What every measurement of the training benchmark shares: its settings and command-line
flags, the measurements by name, the network and batches they run on, and their clock; and
the default recipe's U-Net that the prediction and heap benchmarks time.

Light on purpose (torch and the network only): each measurement's process imports this, and
its peak memory should hold only what it measures.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

import torch

from nuclei.models.unet import build_unet
from nuclei.training.speed import SpeedOptions

LR = 2e-3  # conf/optimizer/adam.yaml
DISTINCT_BATCHES = 4


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


@dataclass(frozen=True)
class TrainVariant:
    """A Lightning training measurement: the Trainer's precision and the task's speed options."""

    precision: str = "32-true"
    speed: SpeedOptions = field(default_factory=SpeedOptions)


#: Lightning runs timed alone, each in its own process.
LIGHTNING_VARIANTS: dict[str, TrainVariant] = {
    "lightning": TrainVariant(),
    "lightning_compiled": TrainVariant(speed=SpeedOptions(compile=True)),
    "lightning_channels_last": TrainVariant(speed=SpeedOptions(channels_last=True)),
    "lightning_compiled_channels_last": TrainVariant(
        speed=SpeedOptions(compile=True, channels_last=True)
    ),
    "lightning_bf16": TrainVariant(precision="bf16-mixed"),
}

#: Every measurement, in the order they run.
VARIANTS: tuple[str, ...] = (
    "lightning_vs_plain",
    "plain",
    *LIGHTNING_VARIANTS,
    "speed_options",
    "loader",
    "predict_eager",
    "predict_compiled",
    "predict_eager_vs_compiled",
)

#: Left out by default: ``speed_options`` measures compile + channels_last interleaved.
OPT_IN_VARIANTS: tuple[str, ...] = ("lightning_compiled_channels_last",)

#: What runs without ``--variants``.
DEFAULT_VARIANTS: tuple[str, ...] = tuple(v for v in VARIANTS if v not in OPT_IN_VARIANTS)

#: The measurements that compile (they start from an empty inductor cache by default).
COMPILING_VARIANTS: frozenset[str] = frozenset(
    {
        "lightning_compiled",
        "lightning_compiled_channels_last",
        "speed_options",
        "predict_compiled",
        "predict_eager_vs_compiled",
    }
)


def build_net(settings: Settings) -> torch.nn.Module:
    """The benchmarked network, with the same initial weights in every measurement."""
    torch.manual_seed(0)
    return build_unet(depth=settings.depth, base_channels=settings.base)


def random_unet(seed: int = 0) -> torch.nn.Module:
    """The default recipe's U-Net (conf/model/unet.yaml: depth 4, 16 base channels, one
    output channel for the binary target) with seeded random weights, in eval mode."""
    torch.manual_seed(seed)
    return build_unet(in_channels=3, out_channels=1, depth=4, base_channels=16).eval()


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


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall-clock times are the work's."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds(call: Callable[[], Any], device: torch.device) -> float:
    """Wall-clock seconds of ``call()``, queued GPU work included."""
    started = time.perf_counter()
    call()
    synchronize(device)
    return time.perf_counter() - started
