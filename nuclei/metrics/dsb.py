"""DSB2018 instance-segmentation metric (mean over IoU thresholds of TP / (TP + FP + FN)).

Per image, predicted and true nuclei are matched by IoU. At each threshold
``t`` in 0.50, 0.55, ..., 0.95 a pair with IoU strictly greater than ``t`` is a true
positive, and ``score(t) = TP / (TP + FP + FN)``. The image score is the mean of the ten
``score(t)``; the data set score (``map``) is the mean of the image scores.

Definitions used for the diagnostic outputs:

- ``ap50`` / ``ap75``: ``score(0.5)`` / ``score(0.75)`` averaged over images (not the
  COCO-style average precision, despite the name: the Kaggle metric calls its
  ``TP / (TP + FP + FN)`` "precision").
- ``f1``: F1 at IoU > 0.5 from TP / FP / FN pooled over the whole data set,
  ``2 TP / (2 TP + FP + FN)``; 1.0 when every image is empty on both sides.
- ``count_error``: mean over images of ``|n_pred - n_true|``.
- ``n_split``: number of true nuclei for which at least two predicted instances each lie
  at least half inside that nucleus (intersection / predicted area >= 0.5).
- ``n_merged``: number of predicted instances that contain at least half of each of at
  least two true nuclei (intersection / true area >= 0.5).

``n_split`` and ``n_merged`` are mirror images: swapping truth and prediction turns one into
the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torchmetrics import Metric

from nuclei.metrics.image_rows import gather_rows, image_row

__all__ = ["THRESHOLDS", "DSBInstanceMetric", "dsb_score", "image_scores"]

#: IoU thresholds of the competition metric: 0.50, 0.55, ..., 0.95.
THRESHOLDS: np.ndarray = np.round(np.arange(0.5, 1.0, 0.05), 2)
_I50 = 0  # index of t = 0.50 in THRESHOLDS
_I75 = 5  # index of t = 0.75 in THRESHOLDS

# Above this many cells the dense contingency table is replaced by a sparse one.
_DENSE_TABLE_LIMIT = 1 << 20

LabelImage = np.ndarray | torch.Tensor


def _to_numpy_labels(labels: LabelImage, name: str) -> np.ndarray:
    """Return a 2-D non-negative integer numpy view of a label image."""
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    arr = np.asarray(labels)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D label image, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise TypeError(
            f"{name} must hold integer instance labels (0 = background), got dtype {arr.dtype}"
        )
    if arr.size and arr.dtype.kind == "i" and arr.min() < 0:
        raise ValueError(f"{name} has negative labels; labels must be >= 0")
    return arr


def _compact(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Relabel to 0 (background) and 1..n in increasing order of the original labels."""
    flat = labels.ravel().astype(np.int64, copy=False)
    if flat.size == 0:
        return flat, 0
    top = int(flat.max())
    if top <= 4 * flat.size + 1024:
        # Lookup table: O(pixels + max label), no sort.
        present = np.zeros(top + 1, dtype=bool)
        present[flat] = True
        present[0] = False
        lut = np.cumsum(present)
        return lut[flat], int(lut[-1])
    uniq, inverse = np.unique(flat, return_inverse=True)
    inverse = inverse.reshape(-1)
    if uniq[0] == 0:
        return inverse, len(uniq) - 1
    return inverse + 1, len(uniq)


def _overlaps(
    true_c: np.ndarray, n_true: int, pred_c: np.ndarray, n_pred: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-zero entries of the true x pred contingency table, background excluded.

    Returns ``(ti, pi, inter)``: 0-based true index, 0-based pred index and the number of
    pixels labelled ``ti + 1`` in truth and ``pi + 1`` in the prediction.
    """
    width = n_pred + 1
    key = true_c * width + pred_c
    if (n_true + 1) * width <= max(_DENSE_TABLE_LIMIT, key.size):
        table = np.bincount(key, minlength=(n_true + 1) * width).reshape(n_true + 1, width)
        ti, pi = np.nonzero(table[1:, 1:])
        return ti, pi, table[1:, 1:][ti, pi]
    # Many instances on both sides: a dense table would be huge, count the pairs by sorting.
    keys, counts = np.unique(key, return_counts=True)
    ti, pi = np.divmod(keys, width)
    both = (ti > 0) & (pi > 0)
    return ti[both] - 1, pi[both] - 1, counts[both]


def image_scores(true_labels: LabelImage, pred_labels: LabelImage) -> dict[str, Any]:
    """Competition score and diagnostics for one image from two integer label images.

    Labels need not be consecutive (0 is background). Returns a dict with
    ``scores`` (float64 array, one ``TP / (TP + FP + FN)`` per threshold in ``THRESHOLDS``),
    ``map`` (their mean), ``tp``, ``fp``, ``fn`` (at IoU > 0.5), ``n_true``, ``n_pred``,
    ``n_split`` and ``n_merged`` (see the module docstring).
    """
    true_arr = _to_numpy_labels(true_labels, "true_labels")
    pred_arr = _to_numpy_labels(pred_labels, "pred_labels")
    if true_arr.shape != pred_arr.shape:
        raise ValueError(
            f"true_labels and pred_labels differ in shape: {true_arr.shape} vs {pred_arr.shape}"
        )
    true_c, n_true = _compact(true_arr)
    pred_c, n_pred = _compact(pred_arr)

    area_true = np.bincount(true_c, minlength=n_true + 1)[1:]
    area_pred = np.bincount(pred_c, minlength=n_pred + 1)[1:]
    ti, pi, inter = _overlaps(true_c, n_true, pred_c, n_pred)
    # IoU only for overlapping pairs: every other pair has IoU 0 and can never match.
    iou = inter / (area_true[ti] + area_pred[pi] - inter)

    # Instances within one label image are disjoint, so IoU(a, b) > 0.5 means b covers more
    # than half of a (|a & b| > |a | b| / 2 >= |a| / 2) and vice versa. Two disjoint
    # predictions cannot both cover more than half of the same true nucleus, so for
    # t >= 0.5 every nucleus has at most one partner with IoU > t: the matching is unique
    # and TP(t) is simply the number of pairs with IoU > t. (Below 0.5 this would fail.)
    tp = (iou[None, :] > THRESHOLDS[:, None]).sum(axis=1)
    fp = n_pred - tp
    fn = n_true - tp
    # tp + fp + fn = n_true + n_pred - tp is 0 only when both sides are empty: a perfect 1.
    scores = tp / np.maximum(tp + fp + fn, 1) if n_true + n_pred else np.ones(len(THRESHOLDS))

    # Split: >= 2 predictions lying at least half inside one true nucleus.
    inside_true = inter / area_pred[pi] >= 0.5
    n_split = int((np.bincount(ti[inside_true], minlength=n_true) >= 2).sum())
    # Merged: one prediction holding at least half of each of >= 2 true nuclei.
    holds_true = inter / area_true[ti] >= 0.5
    n_merged = int((np.bincount(pi[holds_true], minlength=n_pred) >= 2).sum())

    return {
        "scores": scores,
        "map": float(scores.mean()),
        "tp": int(tp[_I50]),
        "fp": int(fp[_I50]),
        "fn": int(fn[_I50]),
        "n_true": n_true,
        "n_pred": n_pred,
        "n_split": n_split,
        "n_merged": n_merged,
    }


def dsb_score(true_list: Sequence[LabelImage], pred_list: Sequence[LabelImage]) -> float:
    """Data set score: mean over images of the per-image competition score."""
    if len(true_list) != len(pred_list):
        raise ValueError(
            f"true_list and pred_list differ in length: {len(true_list)} vs {len(pred_list)}"
        )
    if len(true_list) == 0:
        raise ValueError("dsb_score needs at least one image")
    return float(
        np.mean([image_scores(t, p)["map"] for t, p in zip(true_list, pred_list, strict=True)])
    )


def _as_image_list(x: LabelImage | Sequence[LabelImage], name: str) -> list[LabelImage]:
    """Split a (B, H, W) batch or an (H, W) image or a list of (H, W) images into a list."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()  # one device->host copy for the whole batch
    if isinstance(x, np.ndarray):
        if x.ndim == 2:
            return [x]
        if x.ndim == 3:
            return list(x)
        if x.ndim == 4 and x.shape[1] == 1:
            return [img[0] for img in x]
        raise ValueError(f"{name} must be (H, W), (B, H, W) or (B, 1, H, W), got {tuple(x.shape)}")
    return list(x)


class DSBInstanceMetric(Metric):
    """DSB2018 instance metric as a torchmetrics ``Metric`` with sum-reduced states.

    ``update(preds, target)`` takes integer label images: (B, H, W) or (B, 1, H, W)
    tensors/arrays, a single (H, W) image, or lists of (H, W) images of varying sizes.
    All states are sums, so the result under DDP equals the single-process result
    (up to float64 summation order) for any number of processes.

    ``compute()`` returns float tensors ``map``, ``ap50``, ``ap75``, ``f1`` (pooled),
    ``count_error`` (mean per image), ``n_split`` and ``n_merged`` (totals); see the module
    docstring for the definitions. With no image seen, the means are NaN.

    With ``record_images`` true, ``update`` also keeps a row per image from the same scores
    (:mod:`nuclei.metrics.image_rows`) until :meth:`take_image_rows` (``reset`` keeps them).
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    score_sum: torch.Tensor
    n_images: torch.Tensor
    tp: torch.Tensor
    fp: torch.Tensor
    fn: torch.Tensor
    count_abs_err: torch.Tensor
    n_split: torch.Tensor
    n_merged: torch.Tensor

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # float64: sums of up to thousands of per-image scores stay exact to ~1e-15.
        self.add_state(
            "score_sum",
            default=torch.zeros(len(THRESHOLDS), dtype=torch.float64),
            dist_reduce_fx="sum",
        )
        for name in ("n_images", "tp", "fp", "fn", "count_abs_err", "n_split", "n_merged"):
            self.add_state(name, default=torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")
        self.record_images = False
        self.image_rows: list[dict[str, Any]] = []

    def update(
        self,
        preds: LabelImage | Sequence[LabelImage],
        target: LabelImage | Sequence[LabelImage],
        ids: Sequence[str] | None = None,
    ) -> None:
        """Accumulate per-image scores for a batch of predicted and true label images
        (``ids``, one per image, name the rows kept with ``record_images``)."""
        pred_imgs = _as_image_list(preds, "preds")
        true_imgs = _as_image_list(target, "target")
        if len(pred_imgs) != len(true_imgs):
            raise ValueError(
                f"preds and target hold different numbers of images: "
                f"{len(pred_imgs)} vs {len(true_imgs)}"
            )
        if not pred_imgs:
            return
        score_sum = np.zeros(len(THRESHOLDS))
        counts = np.zeros(6, dtype=np.int64)  # tp, fp, fn, |count error|, split, merged
        ids = list(ids) if ids is not None else [None] * len(pred_imgs)
        for pred, true, sample_id in zip(pred_imgs, true_imgs, ids, strict=True):
            r = image_scores(true, pred)
            if self.record_images:
                self.image_rows.append(
                    image_row(sample_id, r, np.asarray(true), np.asarray(pred), _I50, _I75)
                )
            score_sum += r["scores"]
            counts += (
                r["tp"],
                r["fp"],
                r["fn"],
                abs(r["n_pred"] - r["n_true"]),
                r["n_split"],
                r["n_merged"],
            )
        device = self.score_sum.device
        self.score_sum += torch.as_tensor(score_sum, dtype=torch.float64, device=device)
        self.n_images += len(pred_imgs)
        tp, fp, fn, abs_err, n_split, n_merged = counts.tolist()
        self.tp += tp
        self.fp += fp
        self.fn += fn
        self.count_abs_err += abs_err
        self.n_split += n_split
        self.n_merged += n_merged

    def take_image_rows(self) -> list[dict[str, Any]]:
        """The rows kept so far on every process (collective under DDP), then forgets them."""
        rows, self.image_rows = self.image_rows, []
        return gather_rows(rows, self.process_group)

    def compute(self) -> dict[str, torch.Tensor]:
        """Return the data set metrics as float tensors."""
        n = self.n_images.to(torch.float64)
        per_t = self.score_sum / n
        denom = (2 * self.tp + self.fp + self.fn).to(torch.float64)
        # No instance anywhere (all images empty on both sides) counts as perfect, like the
        # per-image score; torch.where keeps compute() free of host syncs.
        f1 = torch.where(denom > 0, 2 * self.tp / denom.clamp_min(1), 1.0)
        f1 = torch.where(n > 0, f1, torch.nan)
        out = {
            "map": per_t.mean(),
            "ap50": per_t[_I50],
            "ap75": per_t[_I75],
            "f1": f1,
            "count_error": self.count_abs_err.to(torch.float64) / n,
            "n_split": self.n_split.to(torch.float64),
            "n_merged": self.n_merged.to(torch.float64),
        }
        return {k: v.to(torch.float32) for k, v in out.items()}
