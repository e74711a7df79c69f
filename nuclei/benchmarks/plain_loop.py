"""A hand-written training loop, timed alone and under each speed option."""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F

from nuclei.benchmarks.resources import synchronize
from nuclei.benchmarks.settings import Settings
from nuclei.benchmarks.workload import LR, build_net, make_batches
from nuclei.training.speed import SpeedOptions, apply_speed_options, memory_format

#: The options ``speed_options`` compares, each on its own plain loop.
SPEED_OPTIONS: dict[str, SpeedOptions] = {
    "eager": SpeedOptions(),
    "channels_last": SpeedOptions(channels_last=True),
    "compiled": SpeedOptions(compile=True),
    "compiled_channels_last": SpeedOptions(compile=True, channels_last=True),
}


class PlainLoop:
    """A hand-written training loop: forward, BCE loss, backward, Adam step; nothing else."""

    def __init__(self, settings: Settings, options: SpeedOptions | None = None) -> None:
        options = options or SpeedOptions()
        self.device = torch.device(settings.device)
        self.net = build_net(settings).to(self.device).train()
        apply_speed_options(self.net, options)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=LR)
        self.batches = make_batches(settings)
        self.memory_format = memory_format(options.channels_last)
        self.done = 0

    def run(self, steps: int) -> float:
        """Run ``steps`` training steps; return their wall-clock seconds."""
        started = time.perf_counter()
        for _ in range(steps):
            batch = self.batches[self.done % len(self.batches)]
            image = batch["image"].to(self.device, non_blocking=True)
            mask = batch["mask"].to(self.device, non_blocking=True)
            image = image.contiguous(memory_format=self.memory_format)
            loss = F.binary_cross_entropy_with_logits(self.net(image), mask)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.done += 1
        synchronize(self.device)
        return time.perf_counter() - started


def time_plain(settings: Settings) -> dict[str, Any]:
    """Train images/s of the plain loop alone (``steps`` after ``warmup``)."""
    loop = PlainLoop(settings)
    first = loop.run(1)
    loop.run(settings.warmup - 1)
    elapsed = loop.run(settings.steps)
    return {"img_s": settings.steps * settings.batch / elapsed, "first_step_s": first}


def time_speed_options(settings: Settings) -> dict[str, Any]:
    """Speed-ups of compile / channels_last on the train step, interleaved in one process.

    One :class:`PlainLoop` per option (the options change only the network, so Lightning
    gains the same); after their warm-ups (which compile), ``repeats`` rounds run one step
    of each in turn. Speed-ups are medians of the per-round ratios to eager.
    """
    loops = {name: PlainLoop(settings, options) for name, options in SPEED_OPTIONS.items()}
    first = {name: loop.run(1) for name, loop in loops.items()}
    for loop in loops.values():
        loop.run(settings.warmup - 1)
    times: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(settings.repeats):
        for name, loop in loops.items():
            times[name].append(loop.run(1))
    result: dict[str, Any] = {}
    for name in loops:
        result[f"{name}_img_s"] = settings.batch / statistics.median(times[name])
        result[f"{name}_first_step_s"] = first[name]
        ratios = [e / t for e, t in zip(times["eager"], times[name], strict=True)]
        result[f"{name}_speedup"] = statistics.median(ratios)
    return result
