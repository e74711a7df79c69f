"""The training benchmark's measurements in plain PyTorch, without Lightning: a hand-written
training loop (alone, and under each speed option) and tiled prediction (eager, compiled)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks.common import LR, Settings, build_net, make_batches, seconds, synchronize
from nuclei.inference.windows import tiled_predict
from nuclei.training.speed import SpeedOptions, apply_speed_options, memory_format

#: The options ``speed_options`` compares, each on its own plain loop.
SPEED_OPTIONS: dict[str, SpeedOptions] = {
    "eager": SpeedOptions(),
    "channels_last": SpeedOptions(channels_last=True),
    "compiled": SpeedOptions(compile=True),
    "compiled_channels_last": SpeedOptions(compile=True, channels_last=True),
}

WINDOW_BATCH = 8  # windows per forward pass of tiled prediction


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


def predictor(settings: Settings, image: torch.Tensor, compiled: bool) -> Callable[[], Any]:
    """A call of tiled prediction on ``image`` with the network, compiled or not."""
    net = build_net(settings).to(torch.device(settings.device)).eval()
    apply_speed_options(net, SpeedOptions(compile=compiled))
    return partial(
        tiled_predict,
        net,
        image,
        tile=settings.tile,
        overlap=settings.overlap,
        batch_size=WINDOW_BATCH,
    )


def random_image(settings: Settings) -> torch.Tensor:
    """A random ``predict_size`` square RGB image."""
    side = settings.predict_size
    return torch.rand(3, side, side, generator=torch.Generator())


def time_predict(settings: Settings, compiled: bool) -> dict[str, Any]:
    """Megapixels/s of tiled prediction on one large image, after a warm-up call."""
    device = torch.device(settings.device)
    run = predictor(settings, random_image(settings), compiled)
    started = time.perf_counter()
    run()  # compiles every window batch shape when compiled
    warmup_s = time.perf_counter() - started
    times = [seconds(run, device) for _ in range(settings.predict_repeats)]
    megapixels = settings.predict_size**2 / 1e6
    return {"mpx_s": megapixels / statistics.median(times), "first_call_s": warmup_s}


def time_predict_pair(settings: Settings) -> dict[str, Any]:
    """Eager and compiled tiled prediction, alternated call by call in one process."""
    device = torch.device(settings.device)
    image = random_image(settings)
    runs = {}
    for compiled in (False, True):
        runs[compiled] = predictor(settings, image, compiled)
        runs[compiled]()  # warm-up; compiles every window batch shape
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(settings.predict_repeats):
        for compiled, run in runs.items():
            times[compiled].append(seconds(run, device))
    megapixels = settings.predict_size**2 / 1e6
    ratios = [e / c for e, c in zip(times[False], times[True], strict=True)]
    return {
        "eager_mpx_s": megapixels / statistics.median(times[False]),
        "compiled_mpx_s": megapixels / statistics.median(times[True]),
        "speedup": statistics.median(ratios),
    }
