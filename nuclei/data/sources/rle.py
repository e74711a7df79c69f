"""Kaggle DSB2018 run-length encoding of binary masks, both ways.

Pixels are numbered from 1, top to bottom then left to right (column-major), and a mask is
written as space-separated ``start length`` pairs in ascending order, e.g. ``"1 3 10 2"``.
"""

from __future__ import annotations

import numpy as np


class RLEError(ValueError):
    """A run-length encoding is malformed (odd count, out of range, unsorted or overlapping)."""


def _first(condition: np.ndarray) -> int | None:
    """Index of the first True entry, or None."""
    hits = np.flatnonzero(condition)
    return int(hits[0]) if hits.size else None


def rle_encode(mask: np.ndarray) -> str:
    """Encode a 2-D mask (non-zero = foreground) as Kaggle ``start length`` pairs."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"rle_encode expects a 2-D mask, got shape {mask.shape}")
    pixels = np.concatenate([[False], mask.T.ravel() != 0, [False]])
    # Positions (0-based) where a run starts, then where it ends (exclusive), alternately.
    edges = np.flatnonzero(pixels[1:] != pixels[:-1])
    starts, ends = edges[0::2], edges[1::2]
    return " ".join(f"{start + 1} {end - start}" for start, end in zip(starts, ends, strict=True))


def parse_rle(rle: str, n_pixels: int | None = None) -> np.ndarray:
    """Parse and check an encoding: (n, 2) int64 array of 0-based starts and lengths.

    Raises :class:`RLEError` for non-integer values, an odd count, a start below 1, a
    length below 1, a run past ``n_pixels`` (when given), or runs out of order or overlapping.
    """
    tokens = str(rle).split()
    try:
        values = np.array([int(token) for token in tokens], dtype=np.int64)
    except ValueError as exc:
        raise RLEError(f"values must be integers ({exc})") from None
    if values.size % 2:
        raise RLEError(f"odd number of values ({values.size}): expected start/length pairs")
    runs = values.reshape(-1, 2)
    starts, lengths = runs[:, 0], runs[:, 1]
    if (k := _first(starts < 1)) is not None:
        raise RLEError(f"run {k + 1} starts at {starts[k]}: pixel numbers start at 1")
    if (k := _first(lengths < 1)) is not None:
        raise RLEError(f"run {k + 1} has length {lengths[k]}: lengths must be at least 1")
    ends = starts + lengths - 1  # last pixel of each run, 1-based
    if n_pixels is not None and (k := _first(ends > n_pixels)) is not None:
        raise RLEError(
            f"run {k + 1} ({starts[k]} {lengths[k]}) ends at pixel {ends[k]}, "
            f"past the image's {n_pixels} pixels"
        )
    if (k := _first(starts[1:] < starts[:-1])) is not None:
        raise RLEError(
            f"runs not in ascending order: run {k + 2} starts at {starts[k + 1]}, "
            f"before run {k + 1} at {starts[k]}"
        )
    if (k := _first(starts[1:] <= ends[:-1])) is not None:
        raise RLEError(
            f"overlapping runs: run {k + 2} starts at {starts[k + 1]} inside run {k + 1} "
            f"({starts[k]} {lengths[k]})"
        )
    return np.stack([starts - 1, lengths], axis=1)


def runs_to_flat_indices(runs: np.ndarray) -> np.ndarray:
    """Column-major 0-based pixel indices covered by parsed runs (see :func:`parse_rle`)."""
    starts, lengths = runs[:, 0], runs[:, 1]
    offsets = np.cumsum(lengths) - lengths  # where each run begins in the output
    return np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(starts - offsets, lengths)


def rle_decode(rle: str, shape: tuple[int, int]) -> np.ndarray:
    """Decode Kaggle ``start length`` pairs into a boolean (H, W) mask; checks the runs."""
    height, width = (int(side) for side in shape)
    flat = np.zeros(height * width, dtype=bool)
    flat[runs_to_flat_indices(parse_rle(rle, height * width))] = True
    return np.ascontiguousarray(flat.reshape(width, height).T)
