"""Writing synthetic sets in the Kaggle ``stage1_train`` layout, and the cache of complete sets.

``<root>/stage1_train/<id>/images/<id>.png`` is an 8-bit RGBA PNG (alpha 255) and every
``<id>/masks/<name>.png`` an 8-bit grayscale PNG holding one nucleus as 255 on 0, like the
real DSB2018 files. A set is drawn under a generator profile (``profiles``); the cache folder
of a non-default profile carries its name, and the manifest records the profile's settings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import multiprocessing.pool
import os
import shutil
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
from scipy import ndimage as ndi

from nuclei.runtime import (
    ONE_THREAD_EACH,
    available_cores,
    child_environment,
    die_with_parent,
    progress_bar,
)
from nuclei.synthetic.profiles import get_profile
from nuclei.synthetic.render import FAMILIES, SamplePlan, plan_sample, render_sample

logger = logging.getLogger(__name__)

#: Version of the generated data: bump it whenever a change alters any written pixel, so that
#: cached sets of the old version are not used (it is part of the cache folder's name).
GENERATOR_VERSION = 2

# zlib level 1 without row filters: as small as heavier settings on these noisy images and
# much faster. Masks are nearly all zeros, which run-length encoding handles best.
_IMAGE_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]
_MASK_PNG = [*_IMAGE_PNG, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
# Environment of the worker processes. Multi-threaded BLAS in every worker fights over the
# cores (the smooth fields are matrix products), and glibc's default of handing large blocks
# back to the kernel after each image costs much system time in page faults.
_WORKER_ENV = {
    **ONE_THREAD_EACH,
    "MALLOC_MMAP_THRESHOLD_": str(64 << 20),
    "MALLOC_TRIM_THRESHOLD_": str(256 << 20),
}


class WrittenSample(NamedTuple):
    """One image written to disk: its index in the set, family and number of nuclei."""

    index: int
    family: str
    n_nuclei: int


def _encode(array: np.ndarray, params: list[int]) -> bytes:
    ok, buffer = cv2.imencode(".png", array, params)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {array.shape} {array.dtype} PNG")
    return buffer.tobytes()


def encode_image_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB uint8 HxWx3 image, written as 8-bit RGBA with alpha 255."""
    h, w = rgb.shape[:2]
    bgra = np.empty((h, w, 4), np.uint8)  # OpenCV takes colour channels in BGR order
    bgra[..., :3] = rgb[..., ::-1]
    bgra[..., 3] = 255
    return _encode(bgra, _IMAGE_PNG)


def encode_mask_png(mask: np.ndarray) -> bytes:
    """PNG bytes of a uint8 HxW mask, written as 8-bit grayscale."""
    return _encode(mask, _MASK_PNG)


def mask_name(image_id: str, label: int) -> str:
    """File stem of the mask of instance ``label`` (1-based) of image ``image_id``."""
    return hashlib.sha256(f"{image_id}-{label}".encode()).hexdigest()


def write_sample(job: tuple[str, int, int, str]) -> WrittenSample:
    """Render image ``index`` of ``job = (stage_dir, seed, index, profile)`` and write its PNGs."""
    stage_dir, seed, index, profile = job
    rgb, labels, plan = render_sample(seed, index, profile)
    root = Path(stage_dir) / plan.image_id
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    (root / "images" / f"{plan.image_id}.png").write_bytes(encode_image_png(rgb))
    mask = np.zeros(labels.shape, np.uint8)
    slices = ndi.find_objects(labels)
    for k, box in enumerate(slices, start=1):
        mask[box] = np.where(labels[box] == k, 255, 0)
        (root / "masks" / f"{mask_name(plan.image_id, k)}.png").write_bytes(encode_mask_png(mask))
        mask[box] = 0
    return WrittenSample(index, plan.family, len(slices))


def _worker_pool(workers: int) -> multiprocessing.pool.Pool:
    """A pool of ``workers`` spawned processes started with ``_WORKER_ENV``, which end with
    this process (:mod:`nuclei.runtime`)."""
    with child_environment(_WORKER_ENV):
        context = multiprocessing.get_context("spawn")
        return context.Pool(workers, initializer=die_with_parent, initargs=(os.getpid(),))


def _area(plan: SamplePlan) -> int:
    return plan.height * plan.width


def write_dataset(
    out_dir: str | Path,
    n_images: int,
    seed: int,
    workers: int | None,
    progress: bool,
    profile: str = "default",
) -> tuple[Path, list[WrittenSample]]:
    """Write ``<out_dir>/stage1_train`` drawn under ``profile``: its path and the written
    samples in index order."""
    get_profile(profile)  # fail early on an unknown name
    stage_dir = Path(out_dir) / "stage1_train"
    stage_dir.mkdir(parents=True, exist_ok=True)
    # Largest images first so that the pool does not end on one straggler.
    order = sorted(range(n_images), key=lambda i: -_area(plan_sample(seed, i)))
    jobs = [(str(stage_dir), seed, i, profile) for i in order]
    workers = max(1, min(workers or available_cores(), n_images or 1))
    results: list[WrittenSample] = []
    pool = _worker_pool(workers) if workers > 1 else None
    try:
        stream = pool.imap_unordered(write_sample, jobs) if pool else map(write_sample, jobs)
        with progress_bar(enabled=progress) as bar:
            task = bar.add_task("synthetic DSB2018", total=n_images)
            for res in stream:
                results.append(res)
                bar.advance(task)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    results.sort()
    return stage_dir, results


def generate_synthetic_dataset(
    out_dir: str | Path,
    n_images: int = 670,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
    profile: str = "default",
) -> Path:
    """Write a synthetic DSB2018-like ``<out_dir>/stage1_train`` drawn under ``profile`` and
    return its path."""
    return write_dataset(out_dir, n_images, seed, workers, progress, profile)[0]


def synthetic_root(
    cache_dir: str | Path, n_images: int, seed: int, profile: str = "default"
) -> Path:
    """``<cache_dir>/synthetic-v<version>[-<profile>]-n<n_images>-seed<seed>/stage1_train``, the
    profile named unless it is ``default`` (the one place that names a cached set)."""
    tag = "" if get_profile(profile).name == "default" else f"-{profile}"
    name = f"synthetic-v{GENERATOR_VERSION}{tag}-n{n_images}-seed{seed}"
    return Path(cache_dir) / name / "stage1_train"


def _manifest_ok(root: Path, n_images: int, seed: int, profile: str = "default") -> bool:
    """Whether ``root`` holds a complete set of this version, ``n_images``, ``seed`` and
    ``profile`` (with the profile's current settings)."""
    try:
        meta = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return (
        meta.get("version") == GENERATOR_VERSION
        and meta.get("n_images") == n_images
        and meta.get("seed") == seed
        and meta.get("profile") == profile
        and meta.get("profile_settings") == get_profile(profile).settings()
        and (root / "stage1_train").is_dir()
    )


def _write_manifest(
    root: Path, n_images: int, seed: int, profile: str, results: list[WrittenSample]
) -> None:
    families = Counter(r.family for r in results)
    manifest = {
        "generator": __package__,
        "version": GENERATOR_VERSION,
        "n_images": n_images,
        "seed": seed,
        "profile": profile,
        "profile_settings": get_profile(profile).settings(),
        "n_nuclei": int(sum(r.n_nuclei for r in results)),
        "families": {f: families.get(f, 0) for f in FAMILIES},
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _remove_stale_tmp(cache_dir: Path, name: str) -> None:
    """Delete the temporary folders of set ``name`` left by processes that no longer exist."""
    for tmp in cache_dir.glob(f".{name}.tmp-*"):
        try:
            pid = int(tmp.name.rsplit("-", 2)[-2])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(tmp, ignore_errors=True)
        except (ValueError, IndexError, PermissionError):
            continue


def ensure_synthetic_dataset(
    cache_dir: str | Path,
    n_images: int = 670,
    seed: int = 0,
    workers: int | None = None,
    profile: str = "default",
) -> Path:
    """Return ``synthetic_root(cache_dir, n_images, seed, profile)``, generating the set if
    needed.

    The set is written to a temporary sibling folder that is renamed into place only once it is
    complete, with a ``manifest.json``; a folder without a valid manifest is never used.
    """
    stage = synthetic_root(cache_dir, n_images, seed, profile)
    root = stage.parent
    if _manifest_ok(root, n_images, seed, profile):
        return stage

    root.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(root.parent, root.name)
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    logger.info(
        "Generating synthetic set (%d images, seed %d, profile %s) in %s",
        n_images,
        seed,
        profile,
        root,
    )
    start = time.perf_counter()
    try:
        progress = sys.stderr.isatty()
        _, results = write_dataset(tmp, n_images, seed, workers, progress, profile)
        _write_manifest(tmp, n_images, seed, profile, results)
        if root.exists() and not _manifest_ok(root, n_images, seed, profile):
            shutil.rmtree(root)  # not ours to trust: no valid manifest
        try:
            os.rename(tmp, root)
        except OSError:
            if not _manifest_ok(root, n_images, seed, profile):
                raise
            return stage  # another process finished the same set first
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # nothing left after a successful rename
    logger.info("Synthetic set ready in %.1f s: %s", time.perf_counter() - start, root)
    return stage
