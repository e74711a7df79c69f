"""Intervals of a mean, of paired differences and by bootstrap, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nuclei.metrics.intervals import bootstrap_interval, mean_interval, paired_difference


def test_t_interval_of_one_to_five_matches_the_hand_computed_one() -> None:
    # mean 3, std sqrt(2.5) = 1.5811388, t(0.975, 4 dof) = 2.7764451 (tables):
    # half width 2.7764451 * 1.5811388 / sqrt(5) = 2.7764451 * 0.7071068 = 1.9632432
    interval = mean_interval([1, 2, 3, 4, 5])
    assert interval.n == 5
    assert interval.mean == pytest.approx(3.0)
    assert interval.std == pytest.approx(1.5811388, abs=1e-7)
    assert interval.low == pytest.approx(1.0367568, abs=1e-6)
    assert interval.high == pytest.approx(4.9632432, abs=1e-6)
    assert interval.half_width == pytest.approx(1.9632432, abs=1e-6)


def test_confidence_level_changes_the_t_quantile() -> None:
    # t(0.95, 4 dof) = 2.1318468: half width 2.1318468 * 0.7071068 = 1.5074433
    interval = mean_interval([5, 4, 3, 2, 1], confidence=0.90)
    assert (interval.low, interval.high) == pytest.approx((1.4925567, 4.5074433), abs=1e-6)
    with pytest.raises(ValueError, match="confidence"):
        mean_interval([1, 2], confidence=95)


def test_paired_difference_is_the_interval_of_b_minus_a() -> None:
    # differences 0.04, 0.03, 0.05: mean 0.04, std 0.01, t(0.975, 2 dof) = 4.3026527:
    # half width 4.3026527 * 0.01 / sqrt(3) = 0.0248414
    interval = paired_difference([0.70, 0.72, 0.68], [0.74, 0.75, 0.73])
    assert interval.n == 3
    assert interval.mean == pytest.approx(0.04)
    assert interval.std == pytest.approx(0.01)
    assert (interval.low, interval.high) == pytest.approx((0.0151586, 0.0648414), abs=1e-6)
    # A constant shift gives a zero-width interval at the shift.
    shifted = paired_difference([1.0, 2.0, 4.0], [1.5, 2.5, 4.5])
    assert (shifted.low, shifted.mean, shifted.high) == pytest.approx((0.5, 0.5, 0.5))


def test_paired_difference_needs_pairs() -> None:
    with pytest.raises(ValueError, match="a has 3, b has 2"):
        paired_difference([1, 2, 3], [1, 2])


def test_one_value_has_a_mean_but_no_spread_and_none_has_nothing() -> None:
    single = mean_interval([0.7])
    assert single.n == 1 and single.mean == 0.7
    assert math.isnan(single.std) and math.isnan(single.low) and math.isnan(single.high)
    assert math.isnan(bootstrap_interval([0.7]).low)
    with pytest.raises(ValueError, match="at least one value"):
        mean_interval([])
    with pytest.raises(ValueError, match="at least one value"):
        bootstrap_interval([])


def test_bootstrap_of_a_constant_is_degenerate_at_the_constant() -> None:
    interval = bootstrap_interval(np.full(40, 0.3))
    assert interval.n == 40
    assert interval.low == pytest.approx(0.3) and interval.high == pytest.approx(0.3)
    assert interval.std == pytest.approx(0.0, abs=1e-12)


def test_bootstrap_interval_contains_the_mean_and_follows_the_seed() -> None:
    scores = np.random.default_rng(7).uniform(0.2, 0.8, size=60)
    interval = bootstrap_interval(scores, n_resamples=1000, seed=3)
    assert interval.low < scores.mean() < interval.high
    assert interval.mean == pytest.approx(scores.mean())
    # About the t interval's width (std / sqrt(60) ~ 0.022: half width ~ 0.045), not zero.
    assert 0.02 < interval.high - interval.low < 0.15
    assert bootstrap_interval(scores, n_resamples=1000, seed=3) == interval
    assert bootstrap_interval(scores, n_resamples=1000, seed=4) != interval


def test_bootstrap_confidence_sets_the_width_and_the_coverage_of_a_known_mean() -> None:
    """400 samples of 40 values from N(0.5, 0.1): each confidence's interval has the normal
    width 2 z 0.1 / sqrt(40) and holds the true mean about that often."""
    rng = np.random.default_rng(11)
    z = {0.80: 1.2815516, 0.95: 1.9599640}
    covered = dict.fromkeys(z, 0)
    widths: dict[float, list[float]] = {confidence: [] for confidence in z}
    trials = 400
    for trial in range(trials):
        scores = rng.normal(0.5, 0.1, size=40)
        for confidence in z:
            interval = bootstrap_interval(scores, confidence, n_resamples=1000, seed=trial)
            assert interval.confidence == confidence
            covered[confidence] += interval.low < 0.5 < interval.high
            widths[confidence].append(interval.high - interval.low)
    for confidence, quantile in z.items():
        expected_width = 2 * quantile * 0.1 / math.sqrt(40)  # 0.0405 and 0.0620
        assert np.mean(widths[confidence]) == pytest.approx(expected_width, rel=0.08)
    ratios = np.divide(widths[0.95], widths[0.80])
    assert np.median(ratios) == pytest.approx(z[0.95] / z[0.80], rel=0.08)  # 1.53
    # Binomial spread of 400 trials: +-0.02 (80%) and +-0.011 (95%) for one standard error.
    assert 0.74 <= covered[0.80] / trials <= 0.86
    assert 0.92 <= covered[0.95] / trials <= 0.975
