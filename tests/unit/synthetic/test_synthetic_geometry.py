"""Nucleus geometry of the synthetic generator: counts per image and label cleaning."""

from __future__ import annotations

import numpy as np

from nuclei.synthetic import geometry, render


def test_nuclei_count_statistics() -> None:
    counts = []
    for i in range(300):
        rng, plan = render.start_sample(0, i)
        nuclei, _ = geometry.draw_nuclei(rng, plan.family, plan.height, plan.width)
        counts.append(len(nuclei.cy))
    counts_arr = np.array(counts)
    assert counts_arr.min() >= 1 and counts_arr.max() <= geometry.MAX_NUCLEI
    assert 15 <= np.median(counts_arr) <= 40
    assert 30 <= counts_arr.mean() <= 60


def test_clean_keeps_largest_piece_and_relabels() -> None:
    labels = np.zeros((20, 30), np.int32)
    labels[0:6, 0:6] = 1  # instance 1 (index 0): kept
    labels[10:12, 0:2] = 2  # instance 2: a 4-pixel sliver, dropped
    labels[10:18, 10:18] = 3  # instance 3: main piece ...
    labels[0:3, 20:23] = 3  # ... and a stray piece, removed
    labels[12:15, 18:22] = 4  # instance 4 touches 3: kept apart
    dist = np.where(labels > 0, 0.5, np.inf).astype(np.float32)
    new, kept = geometry.clean(labels, dist)
    assert kept.tolist() == [0, 2, 3]
    assert (new[0:6, 0:6] == 1).all() and (new[10:18, 10:18] == 2).all()
    assert (new[12:15, 18:22] == 3).all()
    assert (new[10:12, 0:2] == 0).all() and (new[0:3, 20:23] == 0).all()
    assert np.isinf(dist[new == 0]).all()
