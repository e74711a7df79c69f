"""Rendering of synthetic samples: plans, determinism, family looks and proportions."""

from __future__ import annotations

import numpy as np
import pytest

from nuclei.synthetic import render


def _first_index(family: str, seed: int = 0) -> int:
    return next(i for i in range(2000) if render.plan_sample(seed, i).family == family)


def test_render_matches_plan_and_is_deterministic() -> None:
    for i in range(4):
        rgb, labels, plan = render.render_sample(5, i)
        assert plan == render.plan_sample(5, i)
        assert rgb.shape == (plan.height, plan.width, 3) and rgb.dtype == np.uint8
        assert labels.shape == (plan.height, plan.width) and labels.max() >= 1
        rgb2, labels2, _ = render.render_sample(5, i)
        assert np.array_equal(rgb, rgb2) and np.array_equal(labels, labels2)


@pytest.mark.parametrize("family", render.FAMILIES)
def test_family_appearance(family: str) -> None:
    rgb, labels, plan = render.render_sample(0, _first_index(family))
    assert plan.family == family
    gray = rgb.astype(float).mean(axis=2)
    nuclei, background = gray[labels > 0].mean(), gray[labels == 0].mean()
    if family == "fluorescence":
        assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
        assert background < 60 and nuclei > background + 10  # bright nuclei, dark background
    elif family == "brightfield":
        assert (plan.height, plan.width) == (1024, 1024)
        assert (rgb[..., 0] == rgb[..., 2]).all()
        assert background > 120 and nuclei < background - 15  # dark nuclei, bright background
    else:
        assert (plan.height, plan.width) == (256, 320)
        assert background > 120 and nuclei < background - 30
        r, g, b = (rgb[..., c][labels > 0].mean() for c in range(3))
        assert b > g and r > g  # purple hematoxylin


def test_family_and_size_proportions() -> None:
    rng = np.random.default_rng(123)
    draws = [render.choose_family(rng) for _ in range(20000)]
    total = sum(render.FAMILY_COUNTS)
    for family, count in zip(render.FAMILIES, render.FAMILY_COUNTS, strict=True):
        assert abs(draws.count(family) / len(draws) - count / total) < 0.012
    sizes = [render.choose_size(rng, "fluorescence") for _ in range(5000)]
    assert abs(sizes.count((256, 256)) / len(sizes) - 334 / 546) < 0.03
    assert render.choose_size(rng, "tissue") == (256, 320)
    assert render.choose_size(rng, "brightfield") == (1024, 1024)
