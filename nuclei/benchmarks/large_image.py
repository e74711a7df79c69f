"""Throughput and peak memory of tiled inference, and of postprocessing, on one large image."""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from nuclei.benchmarks.resources import peak_rss_mb, synchronize
from nuclei.inference.tiling import tile_starts, tiled_predict
from nuclei.instances.postprocess import PostprocessConfig, instances_from_probability
from nuclei.models.unet import build_unet


def random_unet() -> nn.Module:
    """The default U-Net (depth 4, 32 base channels) with seeded random weights, in eval mode."""
    torch.manual_seed(0)
    return build_unet().eval()


def time_large_image(
    net: nn.Module, size: int, tile: int, overlap: int, batch_size: int, device: torch.device
) -> dict[str, Any]:
    """Network and postprocessing time of a random ``size`` square image, tiled.

    One ``tile`` window is predicted first (a warm-up). Peak memory is the process's peak
    resident set size (Python, torch and the image included) and, on a GPU,
    ``torch.cuda.max_memory_allocated``.
    """
    net = net.to(device)
    image = torch.rand(3, size, size, generator=torch.Generator().manual_seed(0))
    tiled_predict(net, image[:, :tile, :tile], tile, overlap, 1)  # warm-up
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats()
    baseline = peak_rss_mb()
    started = time.perf_counter()
    prob = tiled_predict(net, image, tile, overlap, batch_size, device=device)
    synchronize(device)
    network_s = time.perf_counter() - started
    started = time.perf_counter()
    labels = instances_from_probability(prob[0].numpy(), PostprocessConfig())
    postprocess_s = time.perf_counter() - started
    megapixels = size * size / 1e6
    result = {
        "size": size,
        "tile": tile,
        "overlap": overlap,
        "batch_size": batch_size,
        "windows": len(tile_starts(size, tile, overlap)) ** 2,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "network_s": round(network_s, 2),
        "network_mpx_per_s": round(megapixels / network_s, 3),
        "postprocess_s": round(postprocess_s, 2),
        "end_to_end_mpx_per_s": round(megapixels / (network_s + postprocess_s), 3),
        "peak_rss_mib": round(peak_rss_mb(), 1),
        "peak_rss_before_mib": round(baseline, 1),
        "instances": int(labels.max()),
    }
    if device.type == "cuda":
        result["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return result
