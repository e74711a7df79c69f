"""Network time of planned windows against one whole-image forward, and of postprocessing.

:func:`time_network` runs the same images both ways, alternated chunk by chunk so that both
see the same machine load: planned windows (:func:`nuclei.inference.maps.predict_maps` in
crop mode, as ``nuclei-predict`` runs a crop-mode model) and one whole-image forward pass
per image (the baseline). :func:`time_postprocess` times the maps' postprocessing alone.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from nuclei.benchmarks.memory_sampler import PeakMemory
from nuclei.benchmarks.resources import synchronize
from nuclei.inference.maps import Forward, predict_maps
from nuclei.inference.network_profile import network_profile
from nuclei.inference.resizing import to_tensor
from nuclei.inference.window_plan import choose_windows, default_memory_budget
from nuclei.instances.postprocess import PostprocessConfig, instances_from_maps
from nuclei.models.unet import build_unet


def significant(value: float, digits: int = 4) -> float:
    """``value`` to ``digits`` significant digits (a tiny time stays > 0, unlike round())."""
    return float(f"{value:.{digits}g}")


def random_unet(seed: int = 0) -> nn.Module:
    """The default recipe's U-Net (conf/model/unet.yaml: depth 4, 16 base channels, one
    output channel for the binary target) with seeded random weights, in eval mode."""
    torch.manual_seed(seed)
    return build_unet(in_channels=3, out_channels=1, depth=4, base_channels=16).eval()


@torch.inference_mode()
def whole_forward(net: Forward, image: np.ndarray, device: torch.device) -> np.ndarray:
    """Probability maps (C, H, W) of an (H, W, 3) uint8 image in one forward pass."""
    batch = to_tensor(image)[None].to(device)
    return torch.sigmoid(net(batch)).float().cpu()[0].numpy()


def _timed(call: Any, device: torch.device, peaks: dict[str, float], key: str) -> tuple[Any, float]:
    """``call()``, its wall-clock seconds, and its peak memory folded into ``peaks``."""
    with PeakMemory(device) as peak:
        started = time.perf_counter()
        result = call()
        synchronize(device)
        seconds = time.perf_counter() - started
    peaks[f"{key}_peak_rss_mib"] = max(peaks.get(f"{key}_peak_rss_mib", 0.0), peak.rss_mib)
    if peak.gpu_mib is not None:
        peaks[f"{key}_peak_gpu_mib"] = max(peaks.get(f"{key}_peak_gpu_mib", 0.0), peak.gpu_mib)
    return result, seconds


def describe_plan(
    net: Forward, image: np.ndarray, device: torch.device, batch_size: int, budget: float
) -> dict[str, Any]:
    """The network's profile and the windows planned for an image of this size."""
    profile = network_profile(net, device, image.shape[-1])
    plan = choose_windows(net, to_tensor(image), None, None, batch_size, budget, device)
    return {
        "profile": asdict(profile),
        "plan": asdict(plan),
        "window_pixels_vs_image": round(
            plan.windows * plan.tile[0] * plan.tile[1] / (image.shape[0] * image.shape[1]), 3
        ),
    }


@dataclass
class _NetworkTimes:
    """What :func:`time_network` adds up over its chunks of images."""

    planned_s: float = 0.0
    planned_cpu_s: float = 0.0
    whole_s: float = 0.0
    worst_difference: float = 0.0
    peaks: dict[str, float] = field(default_factory=dict)


def _time_chunk(
    net: Forward,
    chunk: list[np.ndarray],
    device: torch.device,
    batch_size: int,
    budget: float,
    times: _NetworkTimes,
) -> list[np.ndarray]:
    """Planned windows of ``chunk`` then its whole-image forwards, added to ``times``."""
    cpu_started = time.process_time()
    out, seconds = _timed(
        lambda: predict_maps(
            net, chunk, "crop", batch_size=batch_size, device=device, memory_budget=budget
        ),
        device,
        times.peaks,
        "network",
    )
    times.planned_s += seconds
    times.planned_cpu_s += time.process_time() - cpu_started
    for image, planned in zip(chunk, out, strict=True):
        whole, seconds = _timed(
            lambda image=image: whole_forward(net, image, device), device, times.peaks, "whole"
        )
        times.whole_s += seconds
        difference = float(np.abs(whole - planned).max())
        times.worst_difference = max(times.worst_difference, difference)
    return out


def time_network(
    net: Forward,
    images: Sequence[np.ndarray],
    device: torch.device,
    batch_size: int = 8,
    budget: float | None = None,
    repeats: int = 1,
) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Seconds per image of planned windows (also in CPU seconds, all threads) and of
    whole-image forwards, and the maps.

    Chunks of ``batch_size`` images go through :func:`predict_maps` (planned from
    ``budget`` bytes, default the device's), each followed by the whole-image forwards of
    its images; everything ``repeats`` times. The network is probed and warmed up first.
    """
    budget = default_memory_budget(device) if budget is None else budget
    started = time.perf_counter()
    figures = describe_plan(net, images[0], device, batch_size, budget)
    figures["profile_s"] = round(time.perf_counter() - started, 2)
    whole_forward(net, images[0][:64, :64], device)  # warm-up
    times = _NetworkTimes()
    maps: list[np.ndarray] = []
    for _ in range(repeats):
        maps = []
        for first in range(0, len(images), batch_size):
            chunk = list(images[first : first + batch_size])
            maps.extend(_time_chunk(net, chunk, device, batch_size, budget, times))
    count = len(images) * repeats
    megapixels = sum(image.shape[0] * image.shape[1] for image in images) * repeats / 1e6
    figures.update(
        images=len(images),
        repeats=repeats,
        budget_mib=round(budget / 2**20),
        network_s_per_image=significant(times.planned_s / count),
        network_cpu_s_per_image=significant(times.planned_cpu_s / count),
        whole_s_per_image=significant(times.whole_s / count),
        network_vs_whole=significant(times.planned_s / times.whole_s),
        network_mpx_s=significant(megapixels / times.planned_s),
        whole_mpx_s=significant(megapixels / times.whole_s),
        max_abs_difference=times.worst_difference,
        **{key: round(value, 1) for key, value in times.peaks.items()},
    )
    return figures, maps


def time_postprocess(
    maps: Sequence[np.ndarray], config: PostprocessConfig | None = None, target: str = "binary"
) -> dict[str, Any]:
    """Seconds per image and megapixels/s of postprocessing ``maps`` into instances."""
    config = config or PostprocessConfig()
    seconds: list[float] = []
    counts: list[int] = []
    for probabilities in maps:
        started = time.perf_counter()
        labels = instances_from_maps(probabilities, config, target)
        seconds.append(time.perf_counter() - started)
        counts.append(int(labels.max()))
    megapixels = sum(m.shape[-2] * m.shape[-1] for m in maps) / 1e6
    return {
        "postprocess_s_per_image": significant(statistics.mean(seconds)),
        "postprocess_mpx_s": significant(megapixels / sum(seconds)),
        "instances_per_image": round(statistics.mean(counts), 1),
    }
