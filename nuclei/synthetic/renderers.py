"""The three image families: fluorescence, H&E-like stained tissue and brightfield.

Each renderer takes the image's imaging conditions (``conditions``: microscope, camera, stain,
already scaled by the profile) and draws the specimen's own variation (per-nucleus brightness,
texture, noise) from ``rng`` after the geometry, in a fixed order: changing the order of the
draws changes every image of a set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from nuclei.synthetic import noise
from nuclei.synthetic.conditions import BrightfieldConditions, FluoConditions, TissueConditions
from nuclei.synthetic.geometry import Nuclei


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
    level = noise.per_nucleus_map(labels, bright)

    dome = rng.uniform(0.0, 0.5)
    tex_amp = rng.uniform(0.05, 0.4)
    tex_sigma = float(np.clip(r0 / 7.0, 0.7, 3.0))
    texture = 1.0 + tex_amp * noise.fine_noise(rng, (h, w), tex_sigma)
    spots = noise.spots(rng, inside, rng.uniform(0.0, 6.0) / (np.pi * r0**2), max(0.8, r0 / 9.0))
    signal = level * ((1.0 - dome * d * d) * texture + rng.uniform(0.2, 0.8) * spots)
    signal = np.clip(signal, 0.0, None) * inside

    if rng.random() < 0.3:  # faint cytoplasmic autofluorescence around nuclei
        signal += rng.uniform(0.02, 0.1) * noise.blur_wide(inside.astype(np.float32), 1.3 * r0)

    signal = ndi.gaussian_filter(signal, cond.psf)
    signal *= noise.illumination(rng, h, w, cond.illumination)
    signal *= np.float32(cond.signal / max(float(signal[inside].mean()), 1e-6))

    background = cond.background * (1.0 + 0.15 * noise.smooth_field(rng, h, w, 60.0))
    gray = np.clip(background + signal, 0.0, None)
    gray = noise.add_noise(rng, gray, cond.gain, cond.read, cond.noise_scale)
    return noise.to_uint8(gray)


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
    mottle = noise.fine_noise(rng, (h, w), rng.uniform(1.5, 3.0))
    eosin = rng.uniform(0.2, 0.7) * np.clip(
        1.0
        + rng.uniform(0.0, 0.3) * fib
        + 0.12 * mottle
        + 0.3 * noise.smooth_field(rng, h, w, rng.uniform(25, 70)),
        0.05,
        None,
    )
    hema_bg = rng.uniform(0.05, 0.35) * np.clip(
        1.0 + 0.25 * noise.fine_noise(rng, (h, w), 1.5) + 0.4 * noise.smooth_field(rng, h, w, 40.0),
        0.0,
        None,
    )
    if rng.random() < 0.6:
        gaps = noise.smooth_field(rng, h, w, rng.uniform(20, 50))
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
    level = noise.per_nucleus_map(labels, hema_n)
    rim = np.exp(-(((1.0 - d) / 0.2) ** 2))
    base = rng.uniform(0.55, 0.95)
    tex = noise.fine_noise(rng, (h, w), max(0.7, r0 / 6.0))
    spots = noise.spots(rng, inside, rng.uniform(0.5, 2.0) / (np.pi * r0**2), 1.0)
    hema_nuc = level * ((base + (1.0 - base) * rim) * (1.0 + rng.uniform(0.1, 0.3) * tex))
    hema_nuc += level * 0.4 * spots
    hema = hema_bg + np.clip(hema_nuc, 0.0, None) * inside
    eosin = eosin * np.where(inside, 0.4, 1.0)

    od = hema[..., None] * cond.hematoxylin + eosin[..., None] * cond.eosin
    rgb = 255.0 * np.exp(-od) * cond.tint
    rgb = ndi.gaussian_filter(rgb, (cond.blur, cond.blur, 0.0))
    rgb += np.float32(cond.noise) * rng.standard_normal(rgb.shape, dtype=np.float32)
    return noise.to_uint8(rgb)


def render_brightfield(
    rng: np.random.Generator, canvas: Canvas, cond: BrightfieldConditions
) -> np.ndarray:
    """Grayscale brightfield: dark absorbing nuclei with a light halo on a bright background."""
    labels, nuc, r0, inside, d = canvas.unpack()
    (h, w), n = labels.shape, len(nuc.cy)
    insidef = inside.astype(np.float32)

    background = cond.background
    texture = (
        1.0
        + 0.02 * noise.fine_noise(rng, (h, w), 2.0)
        + 0.015 * noise.smooth_field(rng, h, w, 30.0)
    )
    # Faint, irregular cytoplasm around the nuclei.
    cells = noise.blur_wide(insidef, 1.5 * r0) * np.clip(
        1.0 + 0.6 * noise.smooth_field(rng, h, w, r0), 0, None
    )
    dark = cond.absorption * np.exp(rng.normal(0.0, 0.25, n))
    level = noise.per_nucleus_map(labels, np.clip(dark, 0.05, 0.9))
    tex = noise.fine_noise(rng, (h, w), max(0.8, r0 / 6.0))
    absorb = level * (1.0 - 0.3 * d * d) * (1.0 + rng.uniform(0.1, 0.25) * tex)
    halo = ndi.gaussian_filter(insidef, rng.uniform(1.5, 3.5)) - insidef
    gray = background * (
        texture - rng.uniform(0.04, 0.15) * cells - np.clip(absorb, 0.0, 0.95) * inside
    )
    gray += cond.halo * background * halo
    gray = ndi.gaussian_filter(gray, cond.blur)
    gray *= noise.illumination(rng, h, w, cond.illumination)
    gray += np.float32(cond.noise) * rng.standard_normal((h, w), dtype=np.float32)
    return noise.to_uint8(gray)


RENDERERS: dict[str, Renderer] = {
    "fluorescence": render_fluorescence,
    "tissue": render_tissue,
    "brightfield": render_brightfield,
}
