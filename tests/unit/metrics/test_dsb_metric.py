"""Tests for the DSB2018 instance metric (nuclei.metrics)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import linear_sum_assignment

import nuclei.metrics.dsb as metrics_module
from nuclei.metrics.dsb import THRESHOLDS, DSBInstanceMetric, dsb_score, image_scores


def boxes(shape: tuple[int, int], rects: list[tuple[int, int, int, int]]) -> np.ndarray:
    """Label image with rectangle i (y0, x0, y1, x1; end exclusive) labelled i + 1."""
    out = np.zeros(shape, dtype=np.int32)
    for i, (y0, x0, y1, x1) in enumerate(rects):
        out[y0:y1, x0:x1] = i + 1
    return out


GRID = [(2 + 14 * r, 2 + 14 * c, 12 + 14 * r, 12 + 14 * c) for r in range(2) for c in range(3)]


def reference_scores(true: np.ndarray, pred: np.ndarray) -> dict:
    """Slow, independent implementation: pairwise loops and optimal matching per threshold."""
    tl = [v for v in np.unique(true) if v]
    pl = [v for v in np.unique(pred) if v]
    inter = np.zeros((len(tl), len(pl)))
    union = np.zeros((len(tl), len(pl)))
    for i, a in enumerate(tl):
        for j, b in enumerate(pl):
            inter[i, j] = np.sum((true == a) & (pred == b))
            union[i, j] = np.sum((true == a) | (pred == b))
    iou = inter / np.maximum(union, 1)
    scores = []
    for t in THRESHOLDS:
        match = (iou > t).astype(float)
        if match.size:
            rows, cols = linear_sum_assignment(-match)
            tp = int(match[rows, cols].sum())
        else:
            tp = 0
        denom = len(tl) + len(pl) - tp
        scores.append(tp / denom if denom else 1.0)
    area_t = np.array([np.sum(true == a) for a in tl])
    area_p = np.array([np.sum(pred == b) for b in pl])
    n_split = sum(int(np.sum(inter[i] / np.maximum(area_p, 1) >= 0.5) >= 2) for i in range(len(tl)))
    n_merged = sum(
        int(np.sum(inter[:, j] / np.maximum(area_t, 1) >= 0.5) >= 2) for j in range(len(pl))
    )
    return {"scores": np.array(scores), "n_split": n_split, "n_merged": n_merged}


# --- hand-computed cases -------------------------------------------------------------------


def test_thresholds() -> None:
    np.testing.assert_allclose(THRESHOLDS, [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])


def test_perfect_prediction() -> None:
    true = boxes((30, 44), GRID)
    r = image_scores(true, true.copy())
    np.testing.assert_array_equal(r["scores"], np.ones(10))
    assert r["map"] == 1.0
    assert (r["tp"], r["fp"], r["fn"]) == (6, 0, 0)
    assert (r["n_true"], r["n_pred"], r["n_split"], r["n_merged"]) == (6, 6, 0, 0)


def test_one_missed_nucleus() -> None:
    # N = 6 true, 5 found exactly: TP = 5, FN = 1 at every threshold -> 5/6.
    true = boxes((30, 44), GRID)
    pred = boxes((30, 44), GRID[:-1])
    r = image_scores(true, pred)
    np.testing.assert_allclose(r["scores"], np.full(10, 5 / 6))
    assert (r["tp"], r["fp"], r["fn"]) == (5, 0, 1)


def test_one_false_positive() -> None:
    # N = 5 true, all found, plus one extra prediction: 5 / (5 + 1) = 5/6 everywhere.
    true = boxes((30, 44), GRID[:-1])
    pred = boxes((30, 44), GRID)
    r = image_scores(true, pred)
    np.testing.assert_allclose(r["scores"], np.full(10, 5 / 6))
    assert (r["tp"], r["fp"], r["fn"]) == (5, 1, 0)


def test_merged_pair() -> None:
    # Two adjacent true boxes, 10x14 (140 px) and 10x6 (60 px); one prediction covers both
    # (200 px). IoU with the big one = 140/200 = 0.7, with the small one 60/200 = 0.3.
    # t < 0.7: TP = 1, FP = 0, FN = 1 -> 1/2; t >= 0.7: TP = 0 -> 0/3 = 0.
    true = boxes((12, 22), [(1, 1, 11, 15), (1, 15, 11, 21)])
    pred = boxes((12, 22), [(1, 1, 11, 21)])
    r = image_scores(true, pred)
    np.testing.assert_allclose(r["scores"], [0.5] * 4 + [0.0] * 6)
    assert r["map"] == pytest.approx(0.2)
    assert (r["tp"], r["fp"], r["fn"]) == (1, 0, 1)
    assert (r["n_merged"], r["n_split"]) == (1, 0)


def test_merged_equal_halves_scores_zero() -> None:
    # Each true half has IoU exactly 0.5 with the merged prediction: never > 0.5.
    true = boxes((12, 22), [(1, 1, 11, 11), (1, 11, 11, 21)])
    pred = boxes((12, 22), [(1, 1, 11, 21)])
    r = image_scores(true, pred)
    np.testing.assert_array_equal(r["scores"], np.zeros(10))
    assert (r["tp"], r["fp"], r["fn"], r["n_merged"]) == (0, 1, 2, 1)


def test_split_nucleus() -> None:
    # Mirror of the merged case: one true box cut into 140 + 60 px predictions.
    true = boxes((12, 22), [(1, 1, 11, 21)])
    pred = boxes((12, 22), [(1, 1, 11, 15), (1, 15, 11, 21)])
    r = image_scores(true, pred)
    np.testing.assert_allclose(r["scores"], [0.5] * 4 + [0.0] * 6)
    assert (r["tp"], r["fp"], r["fn"]) == (1, 1, 0)
    assert (r["n_split"], r["n_merged"]) == (1, 0)


def test_split_needs_two_fragments_mostly_inside() -> None:
    # Second prediction lies only 40% inside the true box: not a split.
    true = boxes((12, 30), [(1, 1, 11, 11)])
    pred = boxes((12, 30), [(1, 1, 11, 9), (1, 9, 11, 14)])
    assert image_scores(true, pred)["n_split"] == 0
    pred = boxes((12, 30), [(1, 1, 11, 9), (1, 9, 11, 12)])  # 2/3 inside
    assert image_scores(true, pred)["n_split"] == 1


@pytest.mark.parametrize(
    ("side", "shift", "n_pass"),
    [
        (10, 0, 10),  # IoU 1
        (10, 1, 7),  # IoU 90/110 = 0.818: t = 0.50 ... 0.80 pass
        (10, 2, 4),  # IoU 80/120 = 0.667: t = 0.50 ... 0.65
        (10, 3, 1),  # IoU 70/130 = 0.538: t = 0.50 only
        (10, 4, 0),  # IoU 60/140 = 0.429: none
        (20, 5, 2),  # IoU 300/500 = 0.6 exactly: 0.50, 0.55 (0.60 is not strictly less)
        (14, 2, 5),  # IoU 168/224 = 0.75 exactly: 0.50 ... 0.70
        (15, 5, 0),  # IoU 150/300 = 0.5 exactly: none
    ],
)
def test_shifted_square(side: int, shift: int, n_pass: int) -> None:
    true = boxes((side + 4, side + shift + 4), [(2, 2, 2 + side, 2 + side)])
    pred = boxes(true.shape, [(2, 2 + shift, 2 + side, 2 + side + shift)])
    r = image_scores(true, pred)
    # One pair: score(t) = 1 when it matches, else 0 / (0 + 1 + 1) = 0.
    expected = np.array([1.0] * n_pass + [0.0] * (10 - n_pass))
    np.testing.assert_array_equal(r["scores"], expected)
    assert r["map"] == pytest.approx(n_pass / 10)


def test_both_empty_scores_one() -> None:
    empty = np.zeros((16, 16), dtype=np.int64)
    r = image_scores(empty, empty)
    np.testing.assert_array_equal(r["scores"], np.ones(10))
    assert (r["tp"], r["fp"], r["fn"], r["n_true"], r["n_pred"]) == (0, 0, 0, 0, 0)


def test_one_side_empty_scores_zero() -> None:
    empty = np.zeros((30, 44), dtype=np.int32)
    full = boxes((30, 44), GRID)
    r = image_scores(full, empty)
    np.testing.assert_array_equal(r["scores"], np.zeros(10))
    assert (r["tp"], r["fp"], r["fn"]) == (0, 0, 6)
    r = image_scores(empty, full)
    np.testing.assert_array_equal(r["scores"], np.zeros(10))
    assert (r["tp"], r["fp"], r["fn"]) == (0, 6, 0)


@pytest.mark.parametrize("big", [False, True])
def test_non_consecutive_labels(big: bool) -> None:
    true = boxes((30, 44), GRID)
    pred = np.roll(true, 1, axis=1)
    pred[pred == 6] = 0
    base = image_scores(true, pred)
    # Remap to scattered values (huge ones take the sort-based relabelling path).
    rng = np.random.default_rng(0)
    values = rng.choice(10**9 if big else 50, size=7, replace=False) + 1
    lut = np.concatenate([[0], values]).astype(np.int64)
    other = image_scores(lut[true], lut[pred][:, :].astype(np.int64))
    np.testing.assert_array_equal(other["scores"], base["scores"])
    for key in ("tp", "fp", "fn", "n_true", "n_pred", "n_split", "n_merged"):
        assert other[key] == base[key]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.uint32, np.int64])
def test_integer_dtypes_and_tensors(dtype: type) -> None:
    true = boxes((30, 44), GRID)
    pred = np.roll(true, 2, axis=0)
    base = image_scores(true, pred)
    r = image_scores(true.astype(dtype), pred.astype(dtype))
    np.testing.assert_array_equal(r["scores"], base["scores"])
    r = image_scores(torch.from_numpy(true.astype(np.int64)), torch.from_numpy(pred))
    np.testing.assert_array_equal(r["scores"], base["scores"])


def test_invalid_inputs() -> None:
    a = np.zeros((8, 8), dtype=np.int32)
    with pytest.raises(ValueError, match=r"\(8, 8\) vs \(8, 9\)"):
        image_scores(a, np.zeros((8, 9), dtype=np.int32))
    with pytest.raises(TypeError, match="float"):
        image_scores(a, a.astype(np.float32))
    with pytest.raises(TypeError, match="bool"):
        image_scores(a > 0, a)
    with pytest.raises(ValueError, match="negative"):
        image_scores(a - 1, a)
    with pytest.raises(ValueError, match=r"\(2, 8, 8\)"):
        image_scores(np.zeros((2, 8, 8), dtype=np.int32), a)
    with pytest.raises(ValueError, match="length"):
        dsb_score([a], [a, a])
    with pytest.raises(ValueError, match="at least one"):
        dsb_score([], [])


def test_dsb_score_is_mean_of_image_scores() -> None:
    true = boxes((30, 44), GRID)
    preds = [true, boxes((30, 44), GRID[:-1]), np.zeros_like(true)]
    assert dsb_score([true] * 3, preds) == pytest.approx((1 + 5 / 6 + 0) / 3)


# --- the torchmetrics Metric ----------------------------------------------------------------


def _dataset(n: int = 8, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Random box images and jittered / partly dropped predictions."""
    rng = np.random.default_rng(seed)
    trues, preds = [], []
    for _ in range(n):
        rects = [r for r in GRID if rng.random() < 0.8]
        true = boxes((30, 44), rects)
        jitter = [
            (y0 + rng.integers(-2, 3), x0 + rng.integers(-2, 3), y1, x1)
            for (y0, x0, y1, x1) in rects
            if rng.random() < 0.85
        ]
        pred = boxes((30, 44), [(max(a, 0), max(b, 0), c, d) for a, b, c, d in jitter])
        trues.append(true)
        preds.append(pred)
    return trues, preds


def test_metric_matches_per_image_scores() -> None:
    trues, preds = _dataset(9)
    metric = DSBInstanceMetric()
    for i in range(0, 9, 3):  # three updates of three images each
        metric.update(torch.from_numpy(np.stack(preds[i : i + 3])), np.stack(trues[i : i + 3]))
    out = metric.compute()
    assert set(out) == {"map", "ap50", "ap75", "f1", "count_error", "n_split", "n_merged"}
    assert all(v.dtype == torch.float32 and v.ndim == 0 for v in out.values())

    per = [image_scores(t, p) for t, p in zip(trues, preds, strict=True)]
    assert out["map"].item() == pytest.approx(dsb_score(trues, preds), abs=1e-6)
    assert out["ap50"].item() == pytest.approx(np.mean([r["scores"][0] for r in per]), abs=1e-6)
    assert out["ap75"].item() == pytest.approx(np.mean([r["scores"][5] for r in per]), abs=1e-6)
    tp, fp, fn = (sum(r[k] for r in per) for k in ("tp", "fp", "fn"))
    assert out["f1"].item() == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-6)
    count_err = np.mean([abs(r["n_pred"] - r["n_true"]) for r in per])
    assert out["count_error"].item() == pytest.approx(count_err, abs=1e-6)
    assert out["n_split"].item() == sum(r["n_split"] for r in per)
    assert out["n_merged"].item() == sum(r["n_merged"] for r in per)


def test_metric_hand_computed_summary() -> None:
    true_a = boxes((30, 44), GRID[:2])
    true_b = boxes((30, 44), GRID[:1])
    pred_b = boxes((30, 44), [GRID[3]])  # misses the true box, one false positive
    true_c = np.zeros((30, 44), dtype=np.int32)
    pred_c = boxes((30, 44), GRID[:3])  # three false positives on an empty image
    metric = DSBInstanceMetric()
    metric.update([true_a, pred_b, pred_c], [true_a, true_b, true_c])
    out = metric.compute()
    assert out["map"].item() == pytest.approx(1 / 3)
    assert out["ap50"].item() == pytest.approx(1 / 3)
    # Pooled: TP = 2, FP = 1 + 3, FN = 1 -> 4 / 9 (a per-image mean would give 1/3).
    assert out["f1"].item() == pytest.approx(4 / 9)
    assert out["count_error"].item() == pytest.approx((0 + 0 + 3) / 3)


def test_metric_accepts_lists_of_mixed_sizes_and_channel_dim() -> None:
    small, big = boxes((30, 44), GRID), boxes((40, 50), GRID[:2])
    metric = DSBInstanceMetric()
    metric.update([torch.from_numpy(small), torch.from_numpy(big)], [small, big])
    metric.update(torch.from_numpy(small)[None, None], torch.from_numpy(small)[None, None])
    metric.update(torch.from_numpy(small), torch.from_numpy(small))  # a single (H, W) image
    assert metric.n_images.item() == 4
    assert metric.compute()["map"].item() == 1.0
    with pytest.raises(ValueError, match="different numbers"):
        metric.update([small, small], [small])


def test_metric_empty_compute_is_nan() -> None:
    metric = DSBInstanceMetric()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchmetrics warns about compute before update
        out = metric.compute()
    assert torch.isnan(out["map"]) and torch.isnan(out["f1"])


def test_metric_all_empty_images_is_perfect() -> None:
    empty = torch.zeros(3, 16, 16, dtype=torch.int64)
    metric = DSBInstanceMetric()
    metric.update(empty, empty)
    out = metric.compute()
    assert out["map"].item() == 1.0 and out["f1"].item() == 1.0


def test_metric_states_are_sum_reducible() -> None:
    trues, preds = _dataset(10, seed=1)
    single = DSBInstanceMetric()
    single.update(preds, trues)

    rank0, rank1 = DSBInstanceMetric(), DSBInstanceMetric()
    rank0.update(preds[:3], trues[:3])
    rank1.update(preds[3:], trues[3:])
    # Every state is declared with a "sum" reduction, which is all DDP sync does with them.
    assert set(rank0._reductions) == set(single.metric_state)
    assert all(fx is torch.sum or "sum" in str(fx) for fx in rank0._reductions.values())
    manual = {k: rank0.metric_state[k] + rank1.metric_state[k] for k in single.metric_state}
    for k, v in manual.items():
        torch.testing.assert_close(v, single.metric_state[k])

    rank0.merge_state(rank1)
    expected = single.compute()
    for k, v in rank0.compute().items():
        torch.testing.assert_close(v, expected[k])


# --- properties -----------------------------------------------------------------------------

label_images = arrays(
    np.int32,
    st.tuples(st.integers(1, 12), st.integers(1, 12)),
    elements=st.sampled_from([0, 0, 0, 1, 2, 3, 7, 1000]),
)


@st.composite
def label_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Two label images of one shape: random noise labels or painted rectangles."""
    h, w = draw(st.integers(1, 14)), draw(st.integers(1, 14))

    def one() -> np.ndarray:
        if draw(st.booleans()):
            vals = st.sampled_from([0, 0, 1, 2, 3, 9, 40])
            return draw(arrays(np.int32, (h, w), elements=vals))
        img = np.zeros((h, w), dtype=np.int32)
        for lab in range(1, draw(st.integers(0, 5)) + 1):
            y0, x0 = draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))
            y1, x1 = draw(st.integers(y0 + 1, h)), draw(st.integers(x0 + 1, w))
            img[y0:y1, x0:x1] = lab
        return img

    return one(), one()


@settings(max_examples=150, deadline=None)
@given(label_pairs())
def test_property_bounds_symmetry_and_reference(pair: tuple[np.ndarray, np.ndarray]) -> None:
    true, pred = pair
    r = image_scores(true, pred)
    assert np.all((r["scores"] >= 0) & (r["scores"] <= 1))
    # Scores cannot rise as the IoU threshold rises.
    assert np.all(np.diff(r["scores"]) <= 0)

    swapped = image_scores(pred, true)
    np.testing.assert_array_equal(swapped["scores"], r["scores"])
    assert (swapped["tp"], swapped["fp"], swapped["fn"]) == (r["tp"], r["fn"], r["fp"])
    assert (swapped["n_split"], swapped["n_merged"]) == (r["n_merged"], r["n_split"])

    ref = reference_scores(true, pred)
    np.testing.assert_allclose(r["scores"], ref["scores"], rtol=0, atol=1e-12)
    assert (r["n_split"], r["n_merged"]) == (ref["n_split"], ref["n_merged"])


@settings(max_examples=100, deadline=None)
@given(label_images)
def test_property_self_comparison_is_perfect(labels: np.ndarray) -> None:
    r = image_scores(labels, labels)
    np.testing.assert_array_equal(r["scores"], np.ones(10))
    assert r["n_split"] == 0 and r["n_merged"] == 0


def test_sparse_overlap_table_matches_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    # Many labels on few pixels: with the dense-table limit at 0 the sort-based path runs.
    monkeypatch.setattr(metrics_module, "_DENSE_TABLE_LIMIT", 0)
    rng = np.random.default_rng(3)
    true = rng.integers(0, 60, size=(10, 10))
    pred = np.where(rng.random((10, 10)) < 0.7, true, rng.integers(0, 60, size=(10, 10)))
    r = image_scores(true, pred)
    ref = reference_scores(true, pred)
    np.testing.assert_allclose(r["scores"], ref["scores"], rtol=0, atol=1e-12)
    assert (r["n_split"], r["n_merged"]) == (ref["n_split"], ref["n_merged"])
