"""The prediction benchmark's inputs and timings: synthetic images and a random-weight
checkpoint; planned windows against one whole-image forward; postprocessing; the CPU cost of
decoding and finishing.

Images are crops of the synthetic generator's fluorescence fields (1040x1388, the largest
size it draws), a few rendered and the rest their flips and rotations (the network's time
does not depend on the content, postprocessing's little); larger images are mosaics of them.
The checkpoint is the default recipe's task with seeded random weights, saved the way
``nuclei-train`` saves one (weights and resolved configuration), without training.

:func:`time_network` runs the same images both ways, alternated chunk by chunk so that both
see the same machine load: planned windows
(:func:`nuclei.inference.probabilities.predict_probabilities` in crop mode, as
``nuclei-predict`` runs a crop-mode model) and one whole-image forward pass per image (the
baseline). :func:`time_postprocess` times the maps' postprocessing alone.
:func:`time_finishing` decodes each image file as the prediction's DataLoader workers do and
finishes it (postprocessing, measurements, files, record) as its postprocessing workers do,
one image after another in this process, and reports CPU seconds per image;
:func:`cpu_bound_ratio` turns them into the best throughput the whole prediction can reach
against the network alone when they share the machine's cores.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from hydra import compose, initialize_config_module
from hydra.utils import instantiate
from omegaconf import OmegaConf

from benchmarks.common import synchronize
from benchmarks.memory import PeakMemory
from nuclei.inference.image_files import LoadedImage, read_for_segmenting
from nuclei.inference.network_probe import network_profile
from nuclei.inference.postprocess_pool import Finishing, finish_image
from nuclei.inference.probabilities import Forward, predict_probabilities, to_tensor
from nuclei.inference.windows import choose_windows, default_memory_budget
from nuclei.instances.postprocess import PostprocessConfig, instances_from_maps
from nuclei.synthetic.conditions import CONDITIONS, conditions_rng
from nuclei.synthetic.geometry import clean, draw_nuclei, rasterize
from nuclei.synthetic.profiles import get_profile
from nuclei.synthetic.renderers import RENDERERS, Canvas

FIELD = (1040, 1388)  # a fluorescence size of the generator
CROP = 1024  # side of the square crops taken from it


def render_field(seed: int) -> np.ndarray:
    """A synthetic fluorescence field (1040, 1388, 3) uint8 with nuclei, from ``seed``."""
    height, width = FIELD
    profile = get_profile("default")
    rng = np.random.default_rng([seed, 0])
    conditions = CONDITIONS["fluorescence"](conditions_rng(seed, 0), profile)
    nuclei, radius = draw_nuclei(rng, "fluorescence", height, width, profile)
    labels, depth = rasterize(nuclei, height, width)
    labels, kept = clean(labels, depth)
    canvas = Canvas(labels, depth, nuclei.take(kept), radius)
    gray = RENDERERS["fluorescence"](rng, canvas, conditions)
    return np.repeat(gray[..., None], 3, axis=2) if gray.ndim == 2 else gray


def _variant(field: np.ndarray, k: int) -> np.ndarray:
    """The ``k``-th of the 8 flips and rotations of a square crop."""
    crop = field[:CROP, :CROP] if k < 4 else field[-CROP:, -CROP:]
    return np.ascontiguousarray(np.rot90(crop if k % 2 == 0 else crop[:, ::-1], k // 2))


def benchmark_images(count: int, side: int, seed: int = 0, rendered: int = 8) -> list[np.ndarray]:
    """``count`` synthetic ``side`` x ``side`` RGB uint8 images: crops (or mosaics of crops)
    of up to ``rendered`` fields and their flips and rotations."""
    per_image = -((-side // CROP) ** 2)
    fields = [render_field(seed + i) for i in range(max(1, min(rendered, count * per_image)))]
    crops = (_variant(fields[i % len(fields)], i // len(fields) % 8) for i in itertools.count())
    images = []
    for _ in range(count):
        rows = -(-side // CROP)
        grid = [np.hstack([next(crops) for _ in range(rows)]) for _ in range(rows)]
        images.append(np.ascontiguousarray(np.vstack(grid)[:side, :side]))
    return images


def write_folder(images: Sequence[np.ndarray], folder: Path, prefix: str = "image") -> Path:
    """Write the images as ``<prefix>_NNN.png`` into ``folder`` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images):
        cv2.imwrite(str(folder / f"{prefix}_{index:03d}.png"), image[..., ::-1])
    return folder


def write_random_checkpoint(
    path: Path,
    config_key: str,
    overrides: Sequence[str] = ("data.size.mode=crop",),
    seed: int = 0,
) -> Path:
    """Save the task of ``nuclei-train``'s config (with ``overrides``) with random weights
    as a checkpoint that ``nuclei-predict`` loads, its configuration under ``config_key``
    (:data:`nuclei.runs.checkpoint.CONFIG_KEY`); ``path`` is ``<run>/checkpoints/X.ckpt``."""
    with initialize_config_module(version_base="1.3", config_module="nuclei.conf"):
        cfg = compose("train", overrides=list(overrides))
    cfg.paths.output_dir = str(path.parent.parent)  # was ${hydra:runtime.output_dir}
    torch.manual_seed(seed)
    task = instantiate(cfg.task).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "state_dict": task.state_dict(),
        config_key: OmegaConf.to_container(cfg, resolve=True),
    }
    torch.save(checkpoint, path)
    return path


def significant(value: float, digits: int = 4) -> float:
    """``value`` to ``digits`` significant digits (a tiny time stays > 0, unlike round())."""
    return float(f"{value:.{digits}g}")


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
        lambda: predict_probabilities(
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

    Chunks of ``batch_size`` images go through :func:`predict_probabilities` (planned from
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


def time_finishing(
    paths: Sequence[Path], maps: Sequence[np.ndarray], finishing: Finishing
) -> dict[str, Any]:
    """CPU seconds per image of decoding ``paths`` and of finishing them with ``maps``."""
    decode_s = finish_s = 0.0
    for path, probabilities in zip(paths, maps, strict=True):
        started = time.process_time()
        raw, image = read_for_segmenting(path, max_pixels=2**40)
        decoded = time.process_time()
        finish_image(finishing, LoadedImage(path.stem, path, raw=raw, image=image), probabilities)
        decode_s += decoded - started
        finish_s += time.process_time() - decoded
    count = max(len(paths), 1)
    return {
        "decode_cpu_s_per_image": significant(decode_s / count),
        "finish_cpu_s_per_image": significant(finish_s / count),
    }


def cpu_bound_ratio(figures: dict[str, Any], cores: int) -> float:
    """The most the whole prediction's throughput can be against the network alone when
    decoding and finishing share ``cores`` with the network: the network's wall time over
    the time all their CPU work needs on those cores (at most 1)."""
    network_s = figures["network_s_per_image"]
    cpu_s = (
        figures["network_cpu_s_per_image"]
        + figures["decode_cpu_s_per_image"]
        + figures["finish_cpu_s_per_image"]
    )
    return significant(min(1.0, network_s / (cpu_s / cores)))
