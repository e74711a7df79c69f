"""Kaggle DSB2018 run-length encoding of binary masks, both ways; every nucleus of a label
image at once with :func:`instance_rles`.

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


def _column_major_runs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every run of equal labels in column-major pixel order: 0-based starts, ends, labels.

    The changes are found on the row-major array (pixel vs the one above it, a column's top
    pixel vs the previous column's bottom one) and only their positions are put in
    column-major order: a transposed copy of a 1024^2 image alone costs ~3x the whole encoding.
    """
    height, width = labels.shape
    change = np.empty((height, width), dtype=bool)
    np.not_equal(labels[1:], labels[:-1], out=change[1:])
    np.not_equal(labels[0, 1:], labels[-1, :-1], out=change[0, 1:])
    change[0, 0] = True
    row_major = np.flatnonzero(change)
    rows, columns = np.divmod(row_major, width)
    column_major = columns * height + rows
    order = np.argsort(column_major)
    starts = column_major[order]
    ends = np.append(starts[1:], height * width)
    return starts, ends, labels.reshape(-1)[row_major[order]]


def instance_rles(labels: np.ndarray) -> list[tuple[int, str]]:
    """Kaggle run-length encoding of each nucleus, as (label, rle) in label order.

    One pass finds every run of equal labels in column-major order; the nuclei's runs,
    stably sorted by label (each label's runs stay in pixel order), are formatted per
    label. Labels absent from the image, or not positive, get no entry.
    """
    labels = np.asarray(labels)
    if labels.size == 0:
        return []
    starts, ends, values = _column_major_runs(labels)
    nucleus = values > 0
    if not nucleus.any():
        return []
    starts, ends, values = starts[nucleus], ends[nucleus], values[nucleus]
    order = np.argsort(values, kind="stable")
    starts, ends, values = starts[order], ends[order], values[order]
    pairs = np.stack([starts + 1, ends - starts], axis=1).reshape(-1).tolist()
    # Each label's runs are contiguous: from its first run to the next label's first.
    firsts = np.flatnonzero(np.append(True, values[1:] != values[:-1]))
    lasts = np.append(firsts[1:], values.size)
    return [
        (int(values[first]), " ".join(map(str, pairs[2 * first : 2 * last])))
        for first, last in zip(firsts.tolist(), lasts.tolist(), strict=True)
    ]
