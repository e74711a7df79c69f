"""What the prediction benchmark runs on: synthetic images, a folder of them, a checkpoint.

Images are crops of the synthetic generator's fluorescence fields (1040x1388, the largest
size it draws), a few rendered and the rest their flips and rotations (the network's time
does not depend on the content, postprocessing's little); larger images are mosaics of them.
The checkpoint is the default recipe's task with seeded random weights, saved the way
``nuclei-train`` saves one (weights and resolved configuration), without training.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from hydra import compose, initialize_config_module
from hydra.utils import instantiate
from omegaconf import OmegaConf

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
