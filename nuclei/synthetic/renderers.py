"""The three image families: fluorescence, H&E-like stained tissue and brightfield.

Each renderer takes the image's imaging conditions (``conditions``: microscope, camera, stain,
already scaled by the profile) and draws the specimen's own variation (per-nucleus brightness,
texture, noise) from ``rng`` after the geometry, in a fixed order: changing the order of the
draws changes every image of a set. The random fields, blur, camera noise and illumination
the renderers share come first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from nuclei.synthetic.conditions import BrightfieldConditions, FluoConditions, TissueConditions
from nuclei.synthetic.geometry import Nuclei


def smooth_field(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
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


def fine_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Unit-std white noise blurred by a Gaussian of ``sigma`` px (texture grain)."""
    noise = ndi.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma, truncate=3.0)
    return noise / (noise.std() + 1e-8)


def blur_wide(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with a large sigma, computed on a subsampled grid for speed."""
    f = max(1, int(sigma // 3))
    if f == 1:
        return ndi.gaussian_filter(img, sigma)
    h, w = img.shape
    small = ndi.gaussian_filter(img[::f, ::f], sigma / f)
    up = np.repeat(np.repeat(small, f, axis=0), f, axis=1)[:h, :w]
    return ndi.uniform_filter(up, f)  # box over the blocks = linear interpolation


def random_spots(
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


def illumination(rng: np.random.Generator, h: int, w: int, strength: float) -> np.ndarray:
    """Smooth multiplicative illumination field around 1 (uneven lighting), at least 0.3."""
    field = smooth_field(rng, h, w, max(h, w) * rng.uniform(0.4, 0.9))
    return np.clip(1.0 + strength * field, 0.3, None).astype(np.float32)


def add_noise(
    rng: np.random.Generator, gray: np.ndarray, gain: float, read: float, scale: float = 1.0
) -> np.ndarray:
    """Shot noise (Gaussian approximation, ``gain`` photons per gray level) plus read noise,
    their standard deviation multiplied by ``scale``."""
    std = np.float32(scale) * np.sqrt(gray / np.float32(gain) + np.float32(read**2))
    return gray + std * rng.standard_normal(gray.shape, dtype=np.float32)


def per_nucleus_map(labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Float32 map holding ``values[k - 1]`` on the pixels of label ``k`` and 0 elsewhere."""
    return np.concatenate([[0.0], values]).astype(np.float32)[labels]


def round_to_uint8(img: np.ndarray) -> np.ndarray:
    """Round and clip to 0..255 as uint8 (no scaling: the renderers draw gray levels)."""
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


@dataclass
class Canvas:
    """What a renderer paints: the label image, each pixel's normalised depth in its nucleus,
    the nuclei and their typical radius ``r0``."""

    labels: np.ndarray
    dist: np.ndarray
    nuc: Nuclei
    r0: float

    def unpack(self) -> tuple[np.ndarray, Nuclei, float, np.ndarray, np.ndarray]:
        """``labels, nuclei, r0``, the nucleus pixels, and the depth (1.0 outside nuclei)."""
        inside = self.labels > 0
        depth = np.where(inside, self.dist, 1.0).astype(np.float32)
        return self.labels, self.nuc, self.r0, inside, depth


#: ``(rng, canvas, conditions) -> image``: uint8 HxW (gray) or HxWx3 (RGB).
Renderer = Callable[[np.random.Generator, Canvas, Any], np.ndarray]


def render_fluorescence(
    rng: np.random.Generator, canvas: Canvas, cond: FluoConditions
) -> np.ndarray:
    """Grayscale fluorescence: bright textured nuclei on a dark, noisy background.

    Nucleus pixels average ``cond.background + cond.signal`` before noise, whatever the
    nuclei's relative brightness: a share of dim nuclei and small bright mitotic ones (3-5x).
    """
    labels, nuc, r0, inside, d = canvas.unpack()
    (h, w), n = labels.shape, len(nuc.cy)

    bright = np.exp(rng.normal(0.0, rng.uniform(0.1, 0.45), n))
    dim = rng.random(n) < rng.uniform(0.0, 0.2)
    bright[dim] *= rng.uniform(0.25, 0.5, int(dim.sum()))
    bright[nuc.mitotic] *= rng.uniform(2.5, 4.0, int(nuc.mitotic.sum()))
    level = per_nucleus_map(labels, bright)

    dome = rng.uniform(0.0, 0.5)
    tex_amp = rng.uniform(0.05, 0.4)
    tex_sigma = float(np.clip(r0 / 7.0, 0.7, 3.0))
    texture = 1.0 + tex_amp * fine_noise(rng, (h, w), tex_sigma)
    spots = random_spots(rng, inside, rng.uniform(0.0, 6.0) / (np.pi * r0**2), max(0.8, r0 / 9.0))
    signal = level * ((1.0 - dome * d * d) * texture + rng.uniform(0.2, 0.8) * spots)
    signal = np.clip(signal, 0.0, None) * inside

    if rng.random() < 0.3:  # faint cytoplasmic autofluorescence around nuclei
        signal += rng.uniform(0.02, 0.1) * blur_wide(inside.astype(np.float32), 1.3 * r0)

    signal = ndi.gaussian_filter(signal, cond.psf)
    signal *= illumination(rng, h, w, cond.illumination)
    signal *= np.float32(cond.signal / max(float(signal[inside].mean()), 1e-6))

    background = cond.background * (1.0 + 0.15 * smooth_field(rng, h, w, 60.0))
    gray = np.clip(background + signal, 0.0, None)
    gray = add_noise(rng, gray, cond.gain, cond.read, cond.noise_scale)
    return round_to_uint8(gray)


def _tissue_background(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Stain amounts outside the nuclei: ``(eosin, hematoxylin)``.

    Eosin: cytoplasm / stroma, mottled, sometimes fibrous (anisotropic noise at a random
    angle), with pale gaps (lumen, fat) where neither stain is present.
    """
    fib = ndi.gaussian_filter(
        rng.standard_normal((h, w), dtype=np.float32),
        (rng.uniform(0.7, 1.5), rng.uniform(4.0, 10.0)),
    )
    fib = ndi.rotate(fib, rng.uniform(0, 180), reshape=False, mode="reflect", order=1)
    fib /= fib.std() + 1e-8
    mottle = fine_noise(rng, (h, w), rng.uniform(1.5, 3.0))
    eosin = rng.uniform(0.2, 0.7) * np.clip(
        1.0
        + rng.uniform(0.0, 0.3) * fib
        + 0.12 * mottle
        + 0.3 * smooth_field(rng, h, w, rng.uniform(25, 70)),
        0.05,
        None,
    )
    hema_bg = rng.uniform(0.05, 0.35) * np.clip(
        1.0 + 0.25 * fine_noise(rng, (h, w), 1.5) + 0.4 * smooth_field(rng, h, w, 40.0),
        0.0,
        None,
    )
    if rng.random() < 0.6:
        gaps = smooth_field(rng, h, w, rng.uniform(20, 50))
        keep = 1.0 / (1.0 + np.exp(6.0 * (gaps - rng.uniform(0.6, 1.6))))
        eosin *= keep
        hema_bg *= 0.3 + 0.7 * keep
    return eosin, hema_bg


def render_tissue(rng: np.random.Generator, canvas: Canvas, cond: TissueConditions) -> np.ndarray:
    """H&E-like RGB tissue: purple hematoxylin nuclei in pink eosin stroma."""
    labels, nuc, r0, inside, d = canvas.unpack()
    (h, w), n = labels.shape, len(nuc.cy)
    eosin, hema_bg = _tissue_background(rng, h, w)

    # Nuclei: dense hematoxylin with chromatin texture, darker rim (nuclear membrane).
    hema_n = cond.nucleus_density * np.exp(rng.normal(0.0, 0.2, n))
    level = per_nucleus_map(labels, hema_n)
    rim = np.exp(-(((1.0 - d) / 0.2) ** 2))
    base = rng.uniform(0.55, 0.95)
    tex = fine_noise(rng, (h, w), max(0.7, r0 / 6.0))
    spots = random_spots(rng, inside, rng.uniform(0.5, 2.0) / (np.pi * r0**2), 1.0)
    hema_nuc = level * ((base + (1.0 - base) * rim) * (1.0 + rng.uniform(0.1, 0.3) * tex))
    hema_nuc += level * 0.4 * spots
    hema = hema_bg + np.clip(hema_nuc, 0.0, None) * inside
    eosin = eosin * np.where(inside, 0.4, 1.0)

    od = hema[..., None] * cond.hematoxylin + eosin[..., None] * cond.eosin
    rgb = 255.0 * np.exp(-od) * cond.tint
    rgb = ndi.gaussian_filter(rgb, (cond.blur, cond.blur, 0.0))
    rgb += np.float32(cond.noise) * rng.standard_normal(rgb.shape, dtype=np.float32)
    return round_to_uint8(rgb)


def render_brightfield(
    rng: np.random.Generator, canvas: Canvas, cond: BrightfieldConditions
) -> np.ndarray:
    """Grayscale brightfield: dark absorbing nuclei with a light halo on a bright background."""
    labels, nuc, r0, inside, d = canvas.unpack()
    (h, w), n = labels.shape, len(nuc.cy)
    insidef = inside.astype(np.float32)

    background = cond.background
    texture = 1.0 + 0.02 * fine_noise(rng, (h, w), 2.0) + 0.015 * smooth_field(rng, h, w, 30.0)
    # Faint, irregular cytoplasm around the nuclei.
    cells = blur_wide(insidef, 1.5 * r0) * np.clip(1.0 + 0.6 * smooth_field(rng, h, w, r0), 0, None)
    dark = cond.absorption * np.exp(rng.normal(0.0, 0.25, n))
    level = per_nucleus_map(labels, np.clip(dark, 0.05, 0.9))
    tex = fine_noise(rng, (h, w), max(0.8, r0 / 6.0))
    absorb = level * (1.0 - 0.3 * d * d) * (1.0 + rng.uniform(0.1, 0.25) * tex)
    halo = ndi.gaussian_filter(insidef, rng.uniform(1.5, 3.5)) - insidef
    gray = background * (
        texture - rng.uniform(0.04, 0.15) * cells - np.clip(absorb, 0.0, 0.95) * inside
    )
    gray += cond.halo * background * halo
    gray = ndi.gaussian_filter(gray, cond.blur)
    gray *= illumination(rng, h, w, cond.illumination)
    gray += np.float32(cond.noise) * rng.standard_normal((h, w), dtype=np.float32)
    return round_to_uint8(gray)


RENDERERS: dict[str, Renderer] = {
    "fluorescence": render_fluorescence,
    "tissue": render_tissue,
    "brightfield": render_brightfield,
}
