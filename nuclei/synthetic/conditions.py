"""Imaging conditions of one image (microscope, camera, stain), drawn and scaled by a profile.

Conditions come from their own RNG stream (``conditions_rng``), seeded by the image alone and
drawing a fixed number of values, so the same seed and index get the same draws under every
profile: a profile's factors are then exactly what two renderings of an image differ by.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nuclei.synthetic.profiles import GeneratorProfile

#: Dim fluorescence images: mean nucleus gray level and background, as shares of 255.
DIM_NUCLEUS = (0.15, 0.40)
DIM_BACKGROUND = (0.06, 0.12)
# Bright fluorescence images: background gray level, and nuclei above it (log-uniform).
BRIGHT_BACKGROUND = (0.0, 12.0)
BRIGHT_SIGNAL = (20.0, 160.0)
_GRAY_AXIS = np.full(3, 1.0 / np.sqrt(3.0))


def conditions_rng(seed: int, index: int) -> np.random.Generator:
    """The RNG of image ``index``'s imaging conditions, the same under every profile."""
    return np.random.default_rng([seed, index, 1])


@dataclass(frozen=True)
class FluoConditions:
    """Fluorescence: gray levels (background, nuclei above it), blur, lighting and noise."""

    dim: bool
    background: float  # mean background gray level
    signal: float  # mean nucleus gray level above the background
    psf: float  # sigma (px) of the optical blur
    illumination: float  # strength of the uneven lighting
    gain: float  # photons per gray level (shot noise)
    read: float  # read noise (gray levels)
    noise_scale: float  # multiplies the noise std


def fluorescence_conditions(rng: np.random.Generator, prof: GeneratorProfile) -> FluoConditions:
    """Draw a fluorescence image's conditions and apply ``prof``'s factors."""
    u = rng.random(3)
    bright_bg = rng.uniform(*BRIGHT_BACKGROUND)
    bright_signal = np.exp(rng.uniform(*np.log(BRIGHT_SIGNAL)))
    dim_bg = 255.0 * rng.uniform(*DIM_BACKGROUND)
    dim_total = 255.0 * rng.uniform(*DIM_NUCLEUS)
    wide_psf, sharp_psf = rng.uniform(2.5, 5.0), rng.uniform(0.4, 1.6)
    dim = bool(u[0] < prof.dim_share)
    background, signal = (dim_bg, dim_total - dim_bg) if dim else (bright_bg, bright_signal)
    return FluoConditions(
        dim=dim,
        background=float(background * prof.fluo_background_scale),
        signal=float(signal * prof.fluo_intensity_scale),
        psf=float((wide_psf if u[1] < 0.07 else sharp_psf) * prof.blur_scale),
        illumination=float(rng.uniform(0.0, 0.3)),
        gain=float(rng.uniform(0.3, 8.0)),
        read=float(rng.uniform(0.2, 2.0)),
        noise_scale=prof.noise_scale,
    )


def rotate_hue(v: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate optical-density direction ``v`` about the gray axis (a hue shift), kept >= 0."""
    t = np.deg2rad(degrees)
    k = _GRAY_AXIS
    out = v * np.cos(t) + np.cross(k, v) * np.sin(t) + k * (k @ v) * (1.0 - np.cos(t))
    return np.clip(out, 0.0, None)


def _stain(rng: np.random.Generator, base: list[float], degrees: float) -> np.ndarray:
    """Unit optical-density direction of a stain, jittered around ``base`` and re-hued."""
    v = np.clip(np.asarray(base) + rng.normal(0.0, 0.04, 3), 0.02, None)
    v = rotate_hue(v / np.linalg.norm(v), degrees)
    return (v / np.linalg.norm(v)).astype(np.float32)


@dataclass(frozen=True)
class TissueConditions:
    """H&E-like tissue: stain colours, nucleus stain density, blur and noise."""

    hematoxylin: np.ndarray  # unit optical-density direction
    eosin: np.ndarray
    nucleus_density: float  # hematoxylin optical density of the nuclei
    tint: np.ndarray  # per-channel light source
    blur: float
    noise: float  # std (gray levels)


def tissue_conditions(rng: np.random.Generator, prof: GeneratorProfile) -> TissueConditions:
    """Draw a tissue image's conditions and apply ``prof``'s factors."""
    return TissueConditions(
        hematoxylin=_stain(rng, [0.65, 0.70, 0.29], prof.stain_hue_shift),
        eosin=_stain(rng, [0.10, 0.85, 0.50], prof.stain_hue_shift),
        nucleus_density=float(rng.uniform(1.0, 2.2) * prof.absorption_scale),
        tint=(1.0 - rng.uniform(0.0, 0.04, 3)).astype(np.float32),
        blur=float(rng.uniform(0.5, 1.2) * prof.blur_scale),
        noise=float(rng.uniform(1.5, 4.0) * prof.noise_scale),
    )


@dataclass(frozen=True)
class BrightfieldConditions:
    """Brightfield: light level, nucleus absorption, halo, blur, lighting and noise."""

    background: float
    absorption: float
    halo: float
    blur: float
    illumination: float
    noise: float  # std (gray levels)


def brightfield_conditions(
    rng: np.random.Generator, prof: GeneratorProfile
) -> BrightfieldConditions:
    """Draw a brightfield image's conditions and apply ``prof``'s factors."""
    return BrightfieldConditions(
        background=float(rng.uniform(150.0, 215.0)),
        absorption=float(rng.uniform(0.2, 0.55) * prof.absorption_scale),
        halo=float(rng.uniform(0.1, 0.35)),
        blur=float(rng.uniform(0.6, 1.5) * prof.blur_scale),
        illumination=float(rng.uniform(0.02, 0.12)),
        noise=float(rng.uniform(1.0, 4.0) * prof.noise_scale),
    )


CONDITIONS = {
    "fluorescence": fluorescence_conditions,
    "tissue": tissue_conditions,
    "brightfield": brightfield_conditions,
}
