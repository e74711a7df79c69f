"""Megapixels/s of tiled prediction with the benchmarked network, eager and compiled."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import torch

from nuclei.benchmarks.resources import seconds
from nuclei.benchmarks.settings import Settings
from nuclei.benchmarks.workload import build_net
from nuclei.inference.tiling import tiled_predict
from nuclei.training.speed import SpeedOptions, apply_speed_options

WINDOW_BATCH = 8  # windows per forward pass


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
