"""Confidence intervals of a mean: over runs (Student's t), over pairs of runs, and over one
model's per-image scores (percentile bootstrap).

``nuclei-summarize`` uses them to say "B is better than A by d, 95% interval [l, h]" rather
than comparing two single numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Interval:
    """A mean with its spread and confidence interval.

    Attributes:
        n: number of values.
        mean: their mean.
        std: their sample standard deviation (``ddof=1``; NaN for one value).
        low, high: the interval's bounds (NaN when there are too few values for one).
        confidence: the interval's confidence level, e.g. 0.95.
    """

    n: int
    mean: float
    std: float
    low: float
    high: float
    confidence: float = 0.95

    @property
    def half_width(self) -> float:
        """Half the interval's width (NaN when there is no interval)."""
        return (self.high - self.low) / 2


def _values(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """``values`` as a 1-D float array; at least one is required."""
    array = np.asarray(values, dtype=float).reshape(-1)
    if array.size == 0:
        raise ValueError("an interval needs at least one value, got none")
    return array


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")


def mean_interval(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> Interval:
    """The mean of ``values`` with Student's t interval, mean ± t·std/sqrt(n).

    One value gives its mean with NaN std and bounds; no values is a ``ValueError``.
    """
    _check_confidence(confidence)
    array = _values(values)
    n = int(array.size)
    mean = float(array.mean())
    if n == 1:
        return Interval(1, mean, math.nan, math.nan, math.nan, confidence)
    std = float(array.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return Interval(n, mean, std, mean - half, mean + half, confidence)


def paired_difference(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, confidence: float = 0.95
) -> Interval:
    """The interval of the mean difference ``b - a`` over pairs ``(a[i], b[i])``."""
    first, second = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if first.shape != second.shape:
        raise ValueError(
            f"paired values need the same length: a has {first.size}, b has {second.size}"
        )
    return mean_interval(second - first, confidence)


def bootstrap_interval(
    values: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Interval:
    """The mean of ``values`` (e.g. one model's per-image scores) with a percentile
    bootstrap interval (:func:`scipy.stats.bootstrap`), reproducible from ``seed``."""
    base = mean_interval(values, confidence)  # n, mean and std; NaN bounds for one value
    array = _values(values)
    if base.n == 1 or np.all(array == array[0]):  # one value; or every resample's mean equal
        low = high = base.mean if base.n > 1 else math.nan
        return replace(base, low=low, high=high)
    result = stats.bootstrap(
        (array,),
        np.mean,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    bounds = result.confidence_interval
    return replace(base, low=float(bounds.low), high=float(bounds.high))
