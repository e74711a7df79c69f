"""One synthetic sample: its plan (id, family, size) and its rendering (image and labels).

Every image is drawn from its own RNG seeded by ``(seed, index)``, so a set is reproducible
byte for byte whatever the number of worker processes. Three families are drawn in the DSB2018
proportions: grayscale fluorescence (dark background), H&E-like stained tissue and grayscale
brightfield. Instance labels are the object footprints before blur and noise, so they are exact.
A generator profile (``profiles``) sets the imaging conditions; the family and size of an image
depend on the seed and index only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from nuclei.synthetic.conditions import CONDITIONS, conditions_rng
from nuclei.synthetic.geometry import clean, draw_nuclei, plain_nucleus, rasterize
from nuclei.synthetic.profiles import GeneratorProfile, get_profile
from nuclei.synthetic.renderers import RENDERERS, Canvas

FAMILIES = ("fluorescence", "tissue", "brightfield")

# Counts in the real stage1_train (546 fluorescence, 108 tissue, 16 brightfield).
FAMILY_COUNTS = (546, 108, 16)
# Fluorescence (H, W, count) in stage1_train; 256x320 holds 112 images, 108 of them tissue.
FLUO_SIZES = (
    (256, 256, 334),
    (520, 696, 92),
    (360, 360, 91),
    (512, 640, 13),
    (603, 1272, 6),
    (260, 347, 5),
    (256, 320, 4),
    (1040, 1388, 1),
)
TISSUE_SIZE = (256, 320)
BRIGHTFIELD_SIZE = (1024, 1024)


@dataclass(frozen=True)
class SamplePlan:
    """What image ``index`` of a set will be: its Kaggle id, family and size."""

    index: int
    image_id: str
    family: str
    height: int
    width: int


def image_id(seed: int, index: int, profile: str = "default") -> str:
    """Return the 64-hex Kaggle-style id of image ``index`` of the set drawn from ``seed``
    (under ``profile``: sets of different profiles never share an id)."""
    key = f"{seed}-{index}" if profile == "default" else f"{profile}-{seed}-{index}"
    return hashlib.sha256(key.encode()).hexdigest()


def choose_family(rng: np.random.Generator) -> str:
    """Draw a family in the DSB2018 proportions."""
    p = np.asarray(FAMILY_COUNTS, dtype=float)
    return FAMILIES[int(rng.choice(len(FAMILIES), p=p / p.sum()))]


def choose_size(rng: np.random.Generator, family: str) -> tuple[int, int]:
    """Draw an image size ``(H, W)`` for ``family`` (fixed for tissue and brightfield)."""
    if family == "tissue":
        return TISSUE_SIZE
    if family == "brightfield":
        return BRIGHTFIELD_SIZE
    p = np.asarray([c for _, _, c in FLUO_SIZES], dtype=float)
    h, w, _ = FLUO_SIZES[int(rng.choice(len(p), p=p / p.sum()))]
    return h, w


def start_sample(
    seed: int, index: int, profile: str = "default"
) -> tuple[np.random.Generator, SamplePlan]:
    """The RNG of image ``index`` of the set from ``seed``, after drawing its plan."""
    rng = np.random.default_rng([seed, index])
    family = choose_family(rng)
    h, w = choose_size(rng, family)
    return rng, SamplePlan(index, image_id(seed, index, profile), family, h, w)


def plan_sample(seed: int, index: int, profile: str = "default") -> SamplePlan:
    """Return the family and size of image ``index`` without rendering it (cheap)."""
    return start_sample(seed, index, profile)[1]


def render_sample(
    seed: int, index: int, profile: str | GeneratorProfile = "default"
) -> tuple[np.ndarray, np.ndarray, SamplePlan]:
    """Render image ``index`` of the set from ``seed`` under ``profile`` (a name in
    ``PROFILES`` or a ``GeneratorProfile``): (RGB uint8 HxWx3, int32 labels, plan)."""
    prof = get_profile(profile)
    rng, plan = start_sample(seed, index, prof.name)
    h, w = plan.height, plan.width
    cond = CONDITIONS[plan.family](conditions_rng(seed, index), prof)
    nuc, r0 = draw_nuclei(rng, plan.family, h, w, prof)
    labels, dist = rasterize(nuc, h, w)
    labels, kept = clean(labels, dist)
    if kept.size == 0:
        # Every image has at least one nucleus: put a plain one in the middle.
        nuc = plain_nucleus(h, w, r0)
        labels, dist = rasterize(nuc, h, w)
        labels, kept = clean(labels, dist)
    img = RENDERERS[plan.family](rng, Canvas(labels, dist, nuc.take(kept), r0), cond)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return img, labels, plan
