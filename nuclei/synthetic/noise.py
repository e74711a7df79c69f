"""Random fields, blur, camera noise and illumination shared by the renderers."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


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


def spots(
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


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Round and clip to 0..255 as uint8."""
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
