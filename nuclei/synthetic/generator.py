"""Synthetic DSB2018-like training set written in the exact Kaggle ``stage1_train`` layout.

Every image is drawn from its own RNG seeded by ``(seed, index)``, so a set is reproducible
byte for byte whatever the number of worker processes. Three families are drawn in the DSB2018
proportions: grayscale fluorescence (dark background), H&E-like stained tissue and grayscale
brightfield. Instance masks are the object footprints before blur and noise, so labels are exact.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import multiprocessing
import multiprocessing.pool
import os
import shutil
import struct
import sys
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage import measure

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 1
FAMILIES = ("fluorescence", "tissue", "brightfield")

# Counts in the real stage1_train (546 fluorescence, 108 tissue, 16 brightfield).
_FAMILY_COUNTS = (546, 108, 16)
# Fluorescence (H, W, count) in stage1_train; 256x320 holds 112 images, 108 of them tissue.
_FLUO_SIZES = (
    (256, 256, 334),
    (520, 696, 92),
    (360, 360, 91),
    (512, 640, 13),
    (603, 1272, 6),
    (260, 347, 5),
    (256, 320, 4),
    (1040, 1388, 1),
)
# Range of the typical nucleus radius (px) per fluorescence size: each size is its own
# "experiment" in DSB2018, with its own magnification.
_FLUO_RADIUS = {
    (256, 256): (5.0, 26.0),
    (520, 696): (9.5, 17.0),
    (360, 360): (8.0, 20.0),
    (512, 640): (8.0, 16.0),
    (603, 1272): (7.0, 13.0),
    (260, 347): (7.0, 16.0),
    (256, 320): (6.0, 14.0),
    (1040, 1388): (8.0, 14.0),
}
_TISSUE_SIZE = (256, 320)
_BRIGHTFIELD_SIZE = (1024, 1024)
_MAX_NUCLEI = 380
_MIN_PIXELS = 10
_N_HARMONICS = 5  # boundary harmonics k = 2 .. 6
_PNG_LEVEL = 1
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Environment of the worker processes. Multi-threaded BLAS in every worker fights over the
# cores (the smooth fields are matrix products), and glibc's default of handing large blocks
# back to the kernel after each image costs much system time in page faults.
_WORKER_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MALLOC_MMAP_THRESHOLD_": str(64 << 20),
    "MALLOC_TRIM_THRESHOLD_": str(256 << 20),
}


@dataclass(frozen=True)
class SamplePlan:
    """What image ``index`` of a set will be: its Kaggle id, family and size."""

    index: int
    image_id: str
    family: str
    height: int
    width: int


@dataclass
class _Nuclei:
    cy: np.ndarray
    cx: np.ndarray
    a: np.ndarray  # semi-axes (px)
    b: np.ndarray
    theta: np.ndarray
    amp: np.ndarray  # (n, _N_HARMONICS) relative boundary perturbation
    phase: np.ndarray
    mitotic: np.ndarray  # bool

    def take(self, idx: np.ndarray) -> _Nuclei:
        return _Nuclei(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))


def image_id(seed: int, index: int) -> str:
    """Return the 64-hex Kaggle-style id of image ``index`` of the set drawn from ``seed``."""
    return hashlib.sha256(f"{seed}-{index}".encode()).hexdigest()


def _choose_family(rng: np.random.Generator) -> str:
    p = np.asarray(_FAMILY_COUNTS, dtype=float)
    return FAMILIES[int(rng.choice(len(FAMILIES), p=p / p.sum()))]


def _choose_size(rng: np.random.Generator, family: str) -> tuple[int, int]:
    if family == "tissue":
        return _TISSUE_SIZE
    if family == "brightfield":
        return _BRIGHTFIELD_SIZE
    p = np.asarray([c for _, _, c in _FLUO_SIZES], dtype=float)
    h, w, _ = _FLUO_SIZES[int(rng.choice(len(p), p=p / p.sum()))]
    return h, w


def _start(seed: int, index: int) -> tuple[np.random.Generator, SamplePlan]:
    rng = np.random.default_rng([seed, index])
    family = _choose_family(rng)
    h, w = _choose_size(rng, family)
    return rng, SamplePlan(index, image_id(seed, index), family, h, w)


def plan_sample(seed: int, index: int) -> SamplePlan:
    """Return the family and size of image ``index`` without rendering it (cheap)."""
    return _start(seed, index)[1]


# --------------------------------------------------------------------------- noise fields


def _smooth_field(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Zero-mean, unit-std random field with correlation length ``scale`` px."""
    gh, gw = int(np.ceil(h / scale)) + 3, int(np.ceil(w / scale)) + 3
    grid = rng.standard_normal((gh, gw))

    # Separable Gaussian interpolation of a coarse grid: far cheaper than zooming.
    def weights(n: int, g: int) -> np.ndarray:
        knots = (np.arange(g) - 1.0) * scale
        wt = np.exp(-0.5 * ((np.arange(n)[:, None] - knots[None, :]) / (0.6 * scale)) ** 2)
        return wt / wt.sum(axis=1, keepdims=True)

    field = weights(h, gh) @ grid @ weights(w, gw).T
    field -= field.mean()
    return (field / (field.std() + 1e-8)).astype(np.float32)


def _fine_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    noise = ndi.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma, truncate=3.0)
    return noise / (noise.std() + 1e-8)


def _blur_wide(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with a large sigma, computed on a subsampled grid for speed."""
    f = max(1, int(sigma // 3))
    if f == 1:
        return ndi.gaussian_filter(img, sigma)
    h, w = img.shape
    small = ndi.gaussian_filter(img[::f, ::f], sigma / f)
    up = np.repeat(np.repeat(small, f, axis=0), f, axis=1)[:h, :w]
    return ndi.uniform_filter(up, f)  # box over the blocks = linear interpolation


def _spots(
    rng: np.random.Generator, inside: np.ndarray, per_area: float, sigma: float
) -> np.ndarray:
    """Small Gaussian spots (chromocenters, nucleoli) at random pixels inside nuclei."""
    idx = np.flatnonzero(inside)
    out = np.zeros(inside.shape, np.float32)
    if idx.size == 0:
        return out
    k = rng.poisson(per_area * idx.size)
    if k == 0:
        return out
    pos = rng.choice(idx, size=k)
    np.add.at(out.reshape(-1), pos, rng.uniform(0.4, 1.0, k).astype(np.float32))
    out = ndi.gaussian_filter(out, sigma) * np.float32(2 * np.pi * sigma**2)
    return out * inside


# --------------------------------------------------------------------------- geometry


def _place(
    rng: np.random.Generator,
    h: int,
    w: int,
    n_target: int,
    r0: float,
    size_sd: float,
    cluster_frac: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres and radii: a mix of scattered nuclei and touching clumps / chains."""
    cy = np.empty(n_target)
    cx = np.empty(n_target)
    rr = np.empty(n_target)
    n = 0
    fails = 0
    margin = 0.4 * r0  # centres may lie just outside the image: nuclei cut by the border
    while n < n_target and fails < 40 + 4 * n_target:
        r = r0 * float(np.exp(rng.normal(0.0, size_sd)))
        clustered = n > 0 and rng.random() < cluster_frac
        if clustered:
            # Anchor on the last nucleus (chains) or any earlier one (clumps).
            j = n - 1 if rng.random() < 0.5 else int(rng.integers(n))
            ang = rng.uniform(0, 2 * np.pi)
            sep = (r + rr[j]) * rng.uniform(0.72, 0.98)
            y, x = cy[j] + sep * np.sin(ang), cx[j] + sep * np.cos(ang)
            min_sep = 0.7
        else:
            y = rng.uniform(-margin, h - 1 + margin)
            x = rng.uniform(-margin, w - 1 + margin)
            min_sep = 1.1
        if not (-margin <= y <= h - 1 + margin and -margin <= x <= w - 1 + margin):
            fails += 1
            continue
        if n and np.any(np.hypot(cy[:n] - y, cx[:n] - x) < min_sep * (rr[:n] + r)):
            fails += 1
            continue
        cy[n], cx[n], rr[n] = y, x, r
        n += 1
    return cy[:n], cx[:n], rr[:n]


def _draw_nuclei(rng: np.random.Generator, family: str, h: int, w: int) -> tuple[_Nuclei, float]:
    if family == "fluorescence":
        lo, hi = _FLUO_RADIUS[(h, w)]
        coverage = 0.02 + 0.27 * rng.beta(1.6, 3.4)
        cluster_frac = rng.uniform(0.0, 0.7) if rng.random() < 0.85 else 0.0
    elif family == "tissue":
        lo, hi = 6.5, 13.0
        coverage = 0.06 + 0.2 * rng.beta(2.0, 2.0)
        cluster_frac = rng.uniform(0.4, 0.95)
    else:
        lo, hi = 12.0, 22.0
        coverage = 0.03 + 0.1 * rng.beta(2.0, 2.0)
        cluster_frac = rng.uniform(0.2, 0.7)
    r0 = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    n_target = int(np.clip(round(coverage * h * w / (np.pi * r0**2)), 1, _MAX_NUCLEI))
    size_sd = rng.uniform(0.08, 0.28)
    cy, cx, r = _place(rng, h, w, n_target, r0, size_sd, cluster_frac)
    n = len(r)

    elong_sd = rng.uniform(0.2, 0.7) if family == "tissue" else rng.uniform(0.1, 0.45)
    irregular = rng.uniform(0.015, 0.07)
    mitotic = rng.random(n) < (rng.uniform(0.0, 0.05) if family == "fluorescence" else 0.0)
    r = np.where(mitotic, 0.6 * r, r)
    e = np.clip(1.0 + np.abs(rng.normal(0.0, elong_sd, n)) + 0.6 * mitotic, 1.0, 3.0)
    k = np.arange(2, 2 + _N_HARMONICS)
    amp = rng.normal(0.0, 1.0, (n, _N_HARMONICS)) * (irregular * (2.0 / k) ** 1.5)
    amp[rng.random(n) < 0.1, :2] *= 2.2  # a few bean-shaped / lobed nuclei
    nuclei = _Nuclei(
        cy=cy,
        cx=cx,
        a=r * np.sqrt(e),
        b=r / np.sqrt(e),
        theta=rng.uniform(0, np.pi, n),
        amp=amp,
        phase=rng.uniform(0, 2 * np.pi, (n, _N_HARMONICS)),
        mitotic=mitotic,
    )
    return nuclei, r0


def _rasterize(nuc: _Nuclei, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Label map and normalised radial distance (0 at the centre, 1 on the boundary).

    Where two nuclei overlap, each pixel goes to the nucleus it is relatively closer to, which
    gives the flattened contact line seen between touching nuclei.
    """
    labels = np.zeros((h, w), np.int32)
    dist = np.full((h, w), np.inf, np.float32)
    coef = nuc.amp * np.exp(1j * nuc.phase)  # boundary wobble = Re(sum_k coef_k * e^{i k phi})
    for i in range(len(nuc.cy)):
        cy, cx, a, b = nuc.cy[i], nuc.cx[i], nuc.a[i], nuc.b[i]
        ext = a * (1.0 + np.abs(nuc.amp[i]).sum()) + 1.0
        y0, y1 = max(int(cy - ext), 0), min(int(cy + ext) + 2, h)
        x0, x1 = max(int(cx - ext), 0), min(int(cx + ext) + 2, w)
        if y0 >= y1 or x0 >= x1:
            continue
        yy = (np.arange(y0, y1, dtype=np.float32) - cy)[:, None]
        xx = (np.arange(x0, x1, dtype=np.float32) - cx)[None, :]
        c, s = np.cos(nuc.theta[i]), np.sin(nuc.theta[i])
        u = (xx * c + yy * s) / a
        v = (yy * c - xx * s) / b
        rho = np.sqrt(u * u + v * v)
        z = (u + 1j * v) / np.maximum(rho, 1e-6)  # e^{i phi}
        zk = z * z
        wobble = coef[i, 0] * zk
        for k in range(1, _N_HARMONICS):
            zk = zk * z
            wobble += coef[i, k] * zk
        d = rho / np.maximum(1.0 + wobble.real, 0.3)
        sub_d = dist[y0:y1, x0:x1]
        take = (d < 1.0) & (d < sub_d)
        sub_d[take] = d[take]
        labels[y0:y1, x0:x1][take] = i + 1
    return labels, dist


def _clean(labels: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep each instance's largest 4-connected piece, drop slivers, relabel 1..m in order.

    Returns the new label map and, for each new label, the index of its nucleus.
    """
    comp = measure.label(labels, background=0, connectivity=1)
    comp_label = np.zeros(int(comp.max()) + 1, np.int64)
    comp_label[comp.ravel()] = labels.ravel()  # every piece lies inside one instance
    size = np.bincount(comp.ravel(), minlength=comp_label.size)
    size[0] = 0
    best = np.zeros(int(labels.max()) + 1, np.int64)
    np.maximum.at(best, comp_label, size)
    # One piece per instance: the largest, the first one on ties.
    keep = (size == best[comp_label]) & (size >= _MIN_PIXELS)
    first = np.full(best.size, comp_label.size, np.int64)
    np.minimum.at(first, comp_label[keep], np.flatnonzero(keep))
    keep &= first[comp_label] == np.arange(comp_label.size)
    kept = np.unique(comp_label[keep])
    new_id = np.zeros(best.size, np.int32)
    new_id[kept] = np.arange(1, kept.size + 1, dtype=np.int32)
    labels = np.where(keep, new_id[comp_label], 0).astype(np.int32)[comp]
    dist[labels == 0] = np.inf
    return labels, kept - 1


# --------------------------------------------------------------------------- rendering


def _per_nucleus_map(labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], values]).astype(np.float32)[labels]


def _illumination(rng: np.random.Generator, h: int, w: int, strength: float) -> np.ndarray:
    field = _smooth_field(rng, h, w, max(h, w) * rng.uniform(0.4, 0.9))
    return np.clip(1.0 + strength * field, 0.3, None).astype(np.float32)


def _add_noise(rng: np.random.Generator, gray: np.ndarray, gain: float, read: float) -> np.ndarray:
    """Shot noise (Gaussian approximation, ``gain`` photons per gray level) plus read noise."""
    std = np.sqrt(gray / np.float32(gain) + np.float32(read**2))
    return gray + std * rng.standard_normal(gray.shape, dtype=np.float32)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _render_fluorescence(
    rng: np.random.Generator, labels: np.ndarray, dist: np.ndarray, nuc: _Nuclei, r0: float
) -> np.ndarray:
    h, w = labels.shape
    n = len(nuc.cy)
    inside = labels > 0
    d = np.where(inside, dist, 1.0).astype(np.float32)

    bright = np.exp(rng.normal(0.0, rng.uniform(0.12, 0.4), n))
    dim = rng.random(n) < rng.uniform(0.0, 0.15)
    bright[dim] *= rng.uniform(0.2, 0.5, int(dim.sum()))
    bright[nuc.mitotic] *= 1.8
    level = _per_nucleus_map(labels, bright)

    dome = rng.uniform(0.0, 0.5)
    tex_amp = rng.uniform(0.05, 0.3)
    tex_sigma = float(np.clip(r0 / 7.0, 0.7, 3.0))
    texture = 1.0 + tex_amp * _fine_noise(rng, (h, w), tex_sigma)
    spots = _spots(rng, inside, rng.uniform(0.0, 4.0) / (np.pi * r0**2), max(0.8, r0 / 9.0))
    signal = level * ((1.0 - dome * d * d) * texture + rng.uniform(0.2, 0.8) * spots)
    signal = np.clip(signal, 0.0, None) * inside

    if rng.random() < 0.3:  # faint cytoplasmic autofluorescence around nuclei
        signal += rng.uniform(0.02, 0.1) * _blur_wide(inside.astype(np.float32), 1.3 * r0)

    psf = rng.uniform(2.5, 5.0) if rng.random() < 0.07 else rng.uniform(0.4, 1.6)
    signal = ndi.gaussian_filter(signal, psf)
    signal *= _illumination(rng, h, w, rng.uniform(0.0, 0.3))

    typical = np.exp(rng.uniform(np.log(25.0), np.log(200.0)))  # nucleus gray level
    background = rng.uniform(0.0, 12.0) * (1.0 + 0.15 * _smooth_field(rng, h, w, 60.0))
    gray = np.clip(background + typical * signal, 0.0, None)
    return _to_uint8(_add_noise(rng, gray, rng.uniform(0.3, 8.0), rng.uniform(0.2, 2.0)))


def _render_tissue(
    rng: np.random.Generator, labels: np.ndarray, dist: np.ndarray, nuc: _Nuclei, r0: float
) -> np.ndarray:
    h, w = labels.shape
    n = len(nuc.cy)
    inside = labels > 0
    d = np.where(inside, dist, 1.0).astype(np.float32)

    def stain(base: list[float]) -> np.ndarray:
        v = np.clip(np.asarray(base) + rng.normal(0.0, 0.04, 3), 0.02, None)
        return (v / np.linalg.norm(v)).astype(np.float32)

    v_h = stain([0.65, 0.70, 0.29])  # hematoxylin optical-density direction
    v_e = stain([0.10, 0.85, 0.50])  # eosin

    # Eosin: cytoplasm / stroma, mottled, sometimes fibrous (anisotropic noise at a random
    # angle), with pale gaps (lumen, fat) where neither stain is present.
    fib = ndi.gaussian_filter(
        rng.standard_normal((h, w), dtype=np.float32),
        (rng.uniform(0.7, 1.5), rng.uniform(4.0, 10.0)),
    )
    fib = ndi.rotate(fib, rng.uniform(0, 180), reshape=False, mode="reflect", order=1)
    fib /= fib.std() + 1e-8
    mottle = _fine_noise(rng, (h, w), rng.uniform(1.5, 3.0))
    eosin = rng.uniform(0.2, 0.7) * np.clip(
        1.0
        + rng.uniform(0.0, 0.3) * fib
        + 0.12 * mottle
        + 0.3 * _smooth_field(rng, h, w, rng.uniform(25, 70)),
        0.05,
        None,
    )
    hema_bg = rng.uniform(0.05, 0.35) * np.clip(
        1.0 + 0.25 * _fine_noise(rng, (h, w), 1.5) + 0.4 * _smooth_field(rng, h, w, 40.0),
        0.0,
        None,
    )
    if rng.random() < 0.6:
        gaps = _smooth_field(rng, h, w, rng.uniform(20, 50))
        keep = 1.0 / (1.0 + np.exp(6.0 * (gaps - rng.uniform(0.6, 1.6))))
        eosin *= keep
        hema_bg *= 0.3 + 0.7 * keep

    # Nuclei: dense hematoxylin with chromatin texture, darker rim (nuclear membrane).
    hema_n = rng.uniform(1.0, 2.2) * np.exp(rng.normal(0.0, 0.2, n))
    level = _per_nucleus_map(labels, hema_n)
    rim = np.exp(-(((1.0 - d) / 0.2) ** 2))
    base = rng.uniform(0.55, 0.95)
    tex = _fine_noise(rng, (h, w), max(0.7, r0 / 6.0))
    spots = _spots(rng, inside, rng.uniform(0.5, 2.0) / (np.pi * r0**2), 1.0)
    hema_nuc = level * ((base + (1.0 - base) * rim) * (1.0 + rng.uniform(0.1, 0.3) * tex))
    hema_nuc += level * 0.4 * spots
    hema = hema_bg + np.clip(hema_nuc, 0.0, None) * inside
    eosin = eosin * np.where(inside, 0.4, 1.0)

    od = hema[..., None] * v_h + eosin[..., None] * v_e
    rgb = 255.0 * np.exp(-od) * (1.0 - rng.uniform(0.0, 0.04, 3)).astype(np.float32)
    rgb = ndi.gaussian_filter(rgb, (*(2 * [rng.uniform(0.5, 1.2)]), 0.0))
    rgb += rng.normal(0.0, rng.uniform(1.5, 4.0), rgb.shape)
    return _to_uint8(rgb)


def _render_brightfield(
    rng: np.random.Generator, labels: np.ndarray, dist: np.ndarray, nuc: _Nuclei, r0: float
) -> np.ndarray:
    h, w = labels.shape
    n = len(nuc.cy)
    inside = labels > 0
    insidef = inside.astype(np.float32)
    d = np.where(inside, dist, 1.0).astype(np.float32)

    background = rng.uniform(150.0, 215.0)
    texture = 1.0 + 0.02 * _fine_noise(rng, (h, w), 2.0) + 0.015 * _smooth_field(rng, h, w, 30.0)
    # Faint, irregular cytoplasm around the nuclei.
    cells = _blur_wide(insidef, 1.5 * r0) * np.clip(
        1.0 + 0.6 * _smooth_field(rng, h, w, r0), 0, None
    )
    dark = rng.uniform(0.2, 0.55) * np.exp(rng.normal(0.0, 0.25, n))
    level = _per_nucleus_map(labels, np.clip(dark, 0.05, 0.85))
    tex = _fine_noise(rng, (h, w), max(0.8, r0 / 6.0))
    absorb = level * (1.0 - 0.3 * d * d) * (1.0 + rng.uniform(0.1, 0.25) * tex)
    halo = ndi.gaussian_filter(insidef, rng.uniform(1.5, 3.5)) - insidef
    gray = background * (
        texture - rng.uniform(0.04, 0.15) * cells - np.clip(absorb, 0.0, 0.95) * inside
    )
    gray += rng.uniform(0.1, 0.35) * background * halo
    gray = ndi.gaussian_filter(gray, rng.uniform(0.6, 1.5))
    gray *= _illumination(rng, h, w, rng.uniform(0.02, 0.12))
    gray += np.float32(rng.uniform(1.0, 4.0)) * rng.standard_normal((h, w), dtype=np.float32)
    return _to_uint8(gray)


_RENDERERS = {
    "fluorescence": _render_fluorescence,
    "tissue": _render_tissue,
    "brightfield": _render_brightfield,
}


def render_sample(seed: int, index: int) -> tuple[np.ndarray, np.ndarray, SamplePlan]:
    """Render image ``index`` of the set from ``seed``: (RGB uint8 HxWx3, int32 labels, plan)."""
    rng, plan = _start(seed, index)
    h, w = plan.height, plan.width
    nuc, r0 = _draw_nuclei(rng, plan.family, h, w)
    labels, dist = _rasterize(nuc, h, w)
    labels, kept = _clean(labels, dist)
    if kept.size == 0:
        # Every image has at least one nucleus: put a plain one in the middle.
        nuc = _Nuclei(
            np.array([h / 2]),
            np.array([w / 2]),
            np.array([r0 * 1.1]),
            np.array([r0 * 0.9]),
            np.array([0.0]),
            np.zeros((1, _N_HARMONICS)),
            np.zeros((1, _N_HARMONICS)),
            np.zeros(1, bool),
        )
        labels, dist = _rasterize(nuc, h, w)
        labels, kept = _clean(labels, dist)
    img = _RENDERERS[plan.family](rng, labels, dist, nuc.take(kept), r0)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return img, labels, plan


# --------------------------------------------------------------------------- writing


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(tag))
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)


def _deflate_segment(data: bytes) -> bytes:
    """Raw deflate of ``data`` ending byte-aligned and non-final, so segments can be chained."""
    c = zlib.compressobj(_PNG_LEVEL, zlib.DEFLATED, -15, 9, zlib.Z_RLE)
    return c.compress(data) + c.flush(zlib.Z_FULL_FLUSH)


def _encode_png(img: np.ndarray) -> bytes:
    """Encode an 8-bit gray (HxW) or RGBA (HxWx4) PNG without row filters.

    At zlib level 1 this is as small as Pillow's output for these noisy images and about three
    times faster.
    """
    h, w = img.shape[:2]
    colour_type = 6 if img.ndim == 3 else 0
    body = np.zeros((h, img[0].size + 1), np.uint8)
    body[:, 1:] = img.reshape(h, -1)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0)
    return b"".join(
        [
            _PNG_SIGNATURE,
            _png_chunk(b"IHDR", ihdr),
            _png_chunk(b"IDAT", zlib.compress(body.tobytes(), _PNG_LEVEL)),
            _png_chunk(b"IEND", b""),
        ]
    )


class _MaskPngEncoder:
    """Fast encoder of full-size 8-bit grayscale 0/255 instance masks (one image size).

    A mask is mostly empty rows. Only the rows holding the object are deflated; the empty rows
    above and below reuse cached deflate segments of 2**k zero rows, and the zlib checksum of
    the zero runs is computed in closed form. The output is an ordinary PNG.
    """

    def __init__(self, h: int, w: int) -> None:
        self.h, self.stride = h, w + 1  # each PNG row starts with its filter byte (0)
        ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
        self.head = _PNG_SIGNATURE + _png_chunk(b"IHDR", ihdr)
        self.tail = _png_chunk(b"IEND", b"")
        self.zero_rows: dict[int, bytes] = {}

    def _zeros(self, rows: int) -> list[bytes]:
        out = []
        bit = 1
        while rows:
            if rows & bit:
                if bit not in self.zero_rows:
                    self.zero_rows[bit] = _deflate_segment(bytes(bit * self.stride))
                out.append(self.zero_rows[bit])
                rows -= bit
            bit <<= 1
        return out

    def encode(self, rows: np.ndarray, y0: int) -> bytes:
        """PNG bytes of an HxW mask whose non-zero rows ``rows`` (n x W uint8) start at ``y0``."""
        n = rows.shape[0]
        body = np.zeros((n, self.stride), np.uint8)
        body[:, 1:] = rows
        body = body.tobytes()
        # Adler-32 over a run of zero bytes: a is unchanged and b grows by len * a.
        a, b = 1, (y0 * self.stride) % 65521
        adler = zlib.adler32(body, (b << 16) | a)
        a, b = adler & 0xFFFF, adler >> 16
        b = (b + (self.h - y0 - n) * self.stride * a) % 65521
        idat = b"".join(
            [
                b"\x78\x01",  # zlib header: deflate, 32 KiB window
                *self._zeros(y0),
                _deflate_segment(body),
                *self._zeros(self.h - y0 - n),
                b"\x03\x00",  # empty final block (fixed Huffman)
                struct.pack(">I", (b << 16) | a),
            ]
        )
        return self.head + _png_chunk(b"IDAT", idat) + self.tail


def _write_sample(job: tuple[str, int, int]) -> tuple[int, str, int]:
    stage_dir, seed, index = job
    rgb, labels, plan = render_sample(seed, index)
    h, w = labels.shape
    root = Path(stage_dir) / plan.image_id
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    rgba = np.concatenate([rgb, np.full((h, w, 1), 255, np.uint8)], axis=2)
    (root / "images" / f"{plan.image_id}.png").write_bytes(_encode_png(rgba))
    encoder = _MaskPngEncoder(h, w)
    slices = ndi.find_objects(labels)
    for k, (ys, xs) in enumerate(slices, start=1):
        rows = np.zeros((ys.stop - ys.start, w), np.uint8)
        rows[:, xs] = np.where(labels[ys, xs] == k, 255, 0)
        name = hashlib.sha256(f"{plan.image_id}-{k}".encode()).hexdigest()
        (root / "masks" / f"{name}.png").write_bytes(encoder.encode(rows, ys.start))
    return index, plan.family, len(slices)


def _generate(
    out_dir: str | Path, n_images: int, seed: int, workers: int | None, progress: bool
) -> tuple[Path, list[tuple[int, str, int]]]:
    stage_dir = Path(out_dir) / "stage1_train"
    stage_dir.mkdir(parents=True, exist_ok=True)
    # Largest images first so that the pool does not end on one straggler.
    order = sorted(range(n_images), key=lambda i: -_area(plan_sample(seed, i)))
    jobs = [(str(stage_dir), seed, i) for i in order]
    workers = max(1, min(workers or os.cpu_count() or 1, n_images or 1))
    results: list[tuple[int, str, int]] = []

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not progress,
    )
    pool = _worker_pool(workers) if workers > 1 else None
    try:
        stream = pool.imap_unordered(_write_sample, jobs) if pool else map(_write_sample, jobs)
        with bar:
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


def _worker_pool(workers: int) -> multiprocessing.pool.Pool:
    # Spawned workers start from scratch and read these variables at start-up.
    saved = {k: os.environ.get(k) for k in _WORKER_ENV}
    os.environ.update(_WORKER_ENV)
    try:
        return multiprocessing.get_context("spawn").Pool(workers)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _area(plan: SamplePlan) -> int:
    return plan.height * plan.width


def generate_synthetic_dataset(
    out_dir: str | Path,
    n_images: int = 670,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Write a synthetic DSB2018-like ``<out_dir>/stage1_train`` and return its path."""
    return _generate(out_dir, n_images, seed, workers, progress)[0]


def _manifest_ok(root: Path, n_images: int, seed: int) -> bool:
    try:
        meta = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return (
        meta.get("version") == GENERATOR_VERSION
        and meta.get("n_images") == n_images
        and meta.get("seed") == seed
        and (root / "stage1_train").is_dir()
    )


def _remove_stale_tmp(cache_dir: Path, name: str) -> None:
    for tmp in cache_dir.glob(f".{name}.tmp-*"):
        try:
            pid = int(tmp.name.rsplit("-", 2)[-2])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(tmp, ignore_errors=True)
        except (ValueError, IndexError, PermissionError):
            continue


def ensure_synthetic_dataset(
    cache_dir: str | Path, n_images: int = 670, seed: int = 0, workers: int | None = None
) -> Path:
    """Return ``<cache_dir>/synthetic-v1-n{n}-seed{seed}/stage1_train``, generating it if needed.

    The set is written to a temporary sibling folder that is renamed into place only once it is
    complete, with a ``manifest.json``; a folder without a valid manifest is never used.
    """
    cache_dir = Path(cache_dir)
    name = f"synthetic-v{GENERATOR_VERSION}-n{n_images}-seed{seed}"
    root = cache_dir / name
    if _manifest_ok(root, n_images, seed):
        return root / "stage1_train"

    cache_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(cache_dir, name)
    tmp = cache_dir / f".{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    logger.info("Generating synthetic set (%d images, seed %d) in %s", n_images, seed, root)
    start = time.perf_counter()
    try:
        _, results = _generate(tmp, n_images, seed, workers, progress=sys.stderr.isatty())
        families = Counter(fam for _, fam, _ in results)
        manifest = {
            "generator": "nuclei.synthetic.generator",
            "version": GENERATOR_VERSION,
            "n_images": n_images,
            "seed": seed,
            "n_nuclei": int(sum(k for _, _, k in results)),
            "families": {f: families.get(f, 0) for f in FAMILIES},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if root.exists() and not _manifest_ok(root, n_images, seed):
            shutil.rmtree(root)  # not ours to trust: no valid manifest
        try:
            os.rename(tmp, root)
        except OSError:
            if not _manifest_ok(root, n_images, seed):
                raise
            return root / "stage1_train"  # another process finished the same set first
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # nothing left after a successful rename
    logger.info("Synthetic set ready in %.1f s: %s", time.perf_counter() - start, root)
    return root / "stage1_train"


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m nuclei.synthetic.generator OUT --n 670 --seed 0``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder that will hold stage1_train/")
    parser.add_argument("--n", type=int, default=670, help="number of images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    stage_dir, results = _generate(args.out, args.n, args.seed, args.workers, not args.no_progress)
    elapsed = time.perf_counter() - start
    counts = np.array([k for _, _, k in results])
    families = Counter(fam for _, fam, _ in results)
    print(f"wrote {len(results)} images to {stage_dir} in {elapsed:.1f} s")
    print("families: " + ", ".join(f"{f}={families.get(f, 0)}" for f in FAMILIES))
    if counts.size:
        print(
            f"nuclei: total={counts.sum()} min={counts.min()} median={np.median(counts):g} "
            f"mean={counts.mean():.1f} max={counts.max()}"
        )


if __name__ == "__main__":
    main()
