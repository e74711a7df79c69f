"""Nucleus geometry: shapes, placement, rasterisation into a label map, and cleaning."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage import measure

from nuclei.synthetic.profiles import PROFILES, GeneratorProfile

# Range of the typical nucleus radius (px) per fluorescence size: each size is its own
# "experiment" in DSB2018, with its own magnification.
FLUO_RADIUS = {
    (256, 256): (5.0, 26.0),
    (520, 696): (9.5, 17.0),
    (360, 360): (8.0, 20.0),
    (512, 640): (8.0, 16.0),
    (603, 1272): (7.0, 13.0),
    (260, 347): (7.0, 16.0),
    (256, 320): (6.0, 14.0),
    (1040, 1388): (8.0, 14.0),
}
MAX_NUCLEI = 380
MIN_PIXELS = 10
N_HARMONICS = 5  # boundary harmonics k = 2 .. 6


@dataclass
class Nuclei:
    """Parameters of ``n`` nuclei: centre, ellipse, boundary wobble and mitosis flag."""

    cy: np.ndarray
    cx: np.ndarray
    a: np.ndarray  # semi-axes (px)
    b: np.ndarray
    theta: np.ndarray
    amp: np.ndarray  # (n, N_HARMONICS) relative boundary perturbation
    phase: np.ndarray
    mitotic: np.ndarray  # bool

    def take(self, idx: np.ndarray) -> Nuclei:
        """The nuclei at positions ``idx``."""
        return Nuclei(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))


def plain_nucleus(h: int, w: int, r0: float) -> Nuclei:
    """One smooth, slightly elongated nucleus in the middle of an ``h`` x ``w`` image."""
    return Nuclei(
        np.array([h / 2]),
        np.array([w / 2]),
        np.array([r0 * 1.1]),
        np.array([r0 * 0.9]),
        np.array([0.0]),
        np.zeros((1, N_HARMONICS)),
        np.zeros((1, N_HARMONICS)),
        np.zeros(1, bool),
    )


def place(
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
    margin = 0.7 * r0  # centres may lie outside the image: nuclei cut by the border
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


def _layout(
    rng: np.random.Generator, family: str, h: int, w: int, dense_share: float
) -> tuple[float, float, float]:
    """The family's typical radius range drawn into ``(r0, coverage, cluster_frac)``.

    A ``dense_share`` of fluorescence images are dense clumps of touching nuclei.
    """
    if family == "fluorescence":
        lo, hi = FLUO_RADIUS[(h, w)]
        u = rng.random(2)
        coverage = 0.02 + 0.27 * rng.beta(1.6, 3.4)
        scattered, dense = rng.uniform(0.0, 0.7), rng.uniform(0.8, 0.97)
        cluster_frac = dense if u[0] < dense_share else (scattered if u[1] < 0.85 else 0.0)
    elif family == "tissue":
        lo, hi = 6.5, 13.0
        coverage = 0.06 + 0.2 * rng.beta(2.0, 2.0)
        cluster_frac = rng.uniform(0.4, 0.95)
    else:
        lo, hi = 12.0, 22.0
        coverage = 0.03 + 0.1 * rng.beta(2.0, 2.0)
        cluster_frac = rng.uniform(0.2, 0.7)
    r0 = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    return r0, coverage, cluster_frac


def draw_nuclei(
    rng: np.random.Generator,
    family: str,
    h: int,
    w: int,
    profile: GeneratorProfile = PROFILES["default"],
) -> tuple[Nuclei, float]:
    """Draw the nuclei of one ``family`` image of ``h`` x ``w``: (nuclei, typical radius r0).

    ``profile`` scales the radius and the number of nuclei; every per-image value is drawn
    before the placement, so two profiles draw the same ones for the same image.
    """
    r0, coverage, cluster_frac = _layout(rng, family, h, w, profile.dense_share)
    n_target = round(profile.density_scale * coverage * h * w / (np.pi * r0**2))
    size_sd = rng.uniform(0.08, 0.28)
    elong_sd = rng.uniform(0.2, 0.7) if family == "tissue" else rng.uniform(0.1, 0.45)
    irregular = rng.uniform(0.015, 0.07)
    mitotic_rate = rng.uniform(0.0, 0.08) if family == "fluorescence" else 0.0
    r0 *= profile.size_scale
    cy, cx, r = place(rng, h, w, int(np.clip(n_target, 1, MAX_NUCLEI)), r0, size_sd, cluster_frac)
    n = len(r)

    mitotic = rng.random(n) < mitotic_rate
    r = np.where(mitotic, 0.6 * r, r)  # small, compact, bright (in fluorescence)
    e = np.clip(1.0 + np.abs(rng.normal(0.0, elong_sd, n)) + 0.6 * mitotic, 1.0, 3.0)
    k = np.arange(2, 2 + N_HARMONICS)
    amp = rng.normal(0.0, 1.0, (n, N_HARMONICS)) * (irregular * (2.0 / k) ** 1.5)
    amp[rng.random(n) < 0.1, :2] *= 2.2  # a few bean-shaped / lobed nuclei
    nuclei = Nuclei(
        cy=cy,
        cx=cx,
        a=r * np.sqrt(e),
        b=r / np.sqrt(e),
        theta=rng.uniform(0, np.pi, n),
        amp=amp,
        phase=rng.uniform(0, 2 * np.pi, (n, N_HARMONICS)),
        mitotic=mitotic,
    )
    return nuclei, r0


def rasterize(nuc: Nuclei, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
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
        for k in range(1, N_HARMONICS):
            zk = zk * z
            wobble += coef[i, k] * zk
        d = rho / np.maximum(1.0 + wobble.real, 0.3)
        sub_d = dist[y0:y1, x0:x1]
        take = (d < 1.0) & (d < sub_d)
        sub_d[take] = d[take]
        labels[y0:y1, x0:x1][take] = i + 1
    return labels, dist


def clean(labels: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep each instance's largest 4-connected piece, drop slivers, relabel 1..m in order.

    Returns the new label map and, for each new label, the index of its nucleus. ``dist`` is
    set to infinity outside the kept instances, in place.
    """
    comp = measure.label(labels, background=0, connectivity=1)
    comp_label = np.zeros(int(comp.max()) + 1, np.int64)
    comp_label[comp.ravel()] = labels.ravel()  # every piece lies inside one instance
    size = np.bincount(comp.ravel(), minlength=comp_label.size)
    size[0] = 0
    best = np.zeros(int(labels.max()) + 1, np.int64)
    np.maximum.at(best, comp_label, size)
    # One piece per instance: the largest, the first one on ties.
    keep = (size == best[comp_label]) & (size >= MIN_PIXELS)
    first = np.full(best.size, comp_label.size, np.int64)
    np.minimum.at(first, comp_label[keep], np.flatnonzero(keep))
    keep &= first[comp_label] == np.arange(comp_label.size)
    kept = np.unique(comp_label[keep])
    new_id = np.zeros(best.size, np.int32)
    new_id[kept] = np.arange(1, kept.size + 1, dtype=np.int32)
    labels = np.where(keep, new_id[comp_label], 0).astype(np.int32)[comp]
    dist[labels == 0] = np.inf
    return labels, kept - 1
