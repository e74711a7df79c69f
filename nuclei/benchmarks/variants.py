"""The measurements a benchmark can run, by name, and what each Lightning run varies."""

from __future__ import annotations

from dataclasses import dataclass, field

from nuclei.training.speed import SpeedOptions


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
