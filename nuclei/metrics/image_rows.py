"""Per-image rows of the DSB2018 metric, and their gathering from every DDP process.

A row says how one image scored, so that a researcher can sort and filter where a model
fails: ``id``, ``height``, ``width`` (of the label images scored), ``n_true``, ``n_pred``,
``tp``, ``fp``, ``fn`` (at IoU > 0.5), ``n_split``, ``n_merged``, ``map`` (the image's
competition score), ``ap50``, ``ap75`` (its ``TP / (TP + FP + FN)`` at 0.5 and 0.75) and
``iou``, the foreground IoU of the predicted instances against the true ones (1.0 when both
are empty). The mean of the rows' ``map`` is the data set's ``map``.

Rows may also say where the image comes from (``source``) and its ``kind`` (fluorescence,
tissue, brightfield: see :mod:`nuclei.data.kinds`); :func:`scores_by_kind` summarises each
kind beside the pooled figure, and :func:`write_image_scores` writes the rows as a CSV file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain, zip_longest
from pathlib import Path
from typing import Any

import numpy as np
import torch.distributed as dist

from nuclei.files import atomic_write_text

#: The columns of a per-image row, in order (``source`` and ``kind`` are added by who knows
#: the data).
IMAGE_ROW_COLUMNS = (
    "id",
    "height",
    "width",
    "n_true",
    "n_pred",
    "tp",
    "fp",
    "fn",
    "n_split",
    "n_merged",
    "map",
    "ap50",
    "ap75",
    "iou",
)


#: The per-image scores that :func:`scores_by_kind` averages over each kind's images.
KIND_SCORES = ("map", "ap50", "iou")


def rows_by_kind(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """The rows of each image kind, kinds in sorted order; rows without a ``kind`` left out."""
    by_kind: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        if row.get("kind"):
            by_kind.setdefault(str(row["kind"]), []).append(row)
    return dict(sorted(by_kind.items()))


def scores_by_kind(rows: Sequence[Mapping[str, Any]], stage: str) -> dict[str, float]:
    """Each image kind's mean ``map``, ``ap50`` and ``iou`` over its images, and its number of
    images, as ``<stage>/<score>_<kind>`` and ``<stage>/images_<kind>`` (e.g.
    ``val/map_tissue``); kinds in sorted order, rows without a ``kind`` left out.

    ``map`` and ``ap50`` are means over images, as the pooled ones are; ``iou`` is the mean of
    the images' foreground IoU (the pooled ``iou`` of a run counts pixels over all images).
    """
    metrics: dict[str, float] = {}
    for kind, kept in rows_by_kind(rows).items():
        for name in KIND_SCORES:
            metrics[f"{stage}/{name}_{kind}"] = float(np.mean([float(r[name]) for r in kept]))
        metrics[f"{stage}/images_{kind}"] = float(len(kept))
    return metrics


def foreground_iou(true_labels: np.ndarray, pred_labels: np.ndarray) -> float:
    """IoU of the foregrounds (label > 0) of two label images; 1.0 when both are empty."""
    true_fg, pred_fg = true_labels > 0, pred_labels > 0
    union = int(np.count_nonzero(true_fg | pred_fg))
    return int(np.count_nonzero(true_fg & pred_fg)) / union if union else 1.0


def image_row(
    sample_id: str | None,
    scores: Mapping[str, Any],
    true_labels: np.ndarray,
    pred_labels: np.ndarray,
    i50: int,
    i75: int,
) -> dict[str, Any]:
    """One image's row from its :func:`nuclei.metrics.dsb.image_scores` result.

    ``i50`` and ``i75`` index the thresholds 0.5 and 0.75 in ``scores["scores"]``.
    """
    per_threshold = scores["scores"]
    height, width = true_labels.shape
    counts = ("n_true", "n_pred", "tp", "fp", "fn", "n_split", "n_merged")
    return {
        "id": sample_id,
        "height": int(height),
        "width": int(width),
        **{name: int(scores[name]) for name in counts},
        "map": float(scores["map"]),
        "ap50": float(per_threshold[i50]),
        "ap75": float(per_threshold[i75]),
        "iou": foreground_iou(true_labels, pred_labels),
    }


def interleave(parts: Sequence[Sequence[Any]]) -> list[Any]:
    """Items of ``parts`` taken in turn: the order of a split whose processes took its
    samples in turn (process ``r`` of ``n``: ``r, r + n, ...``, as the evaluation sampler)."""
    missing = object()
    taken = chain.from_iterable(zip_longest(*parts, fillvalue=missing))
    return [item for item in taken if item is not missing]


def gather_rows(rows: list[dict[str, Any]], group: Any = None) -> list[dict[str, Any]]:
    """Every process's rows, on every process (the rows as they are on one process).

    Collective: under torch.distributed every process of ``group`` must call it.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return list(rows)
    world = dist.get_world_size(group)
    if world < 2:
        return list(rows)
    parts: list[list[dict[str, Any]] | None] = [None] * world
    dist.all_gather_object(parts, rows, group=group)
    return interleave([part or [] for part in parts])


#: The columns of a per-image scores file: the image, where it comes from, its kind, then its
#: scores.
IMAGE_SCORE_COLUMNS = (IMAGE_ROW_COLUMNS[0], "source", "kind", *IMAGE_ROW_COLUMNS[1:])


def image_scores_csv(rows: Iterable[Mapping[str, Any]], leading: Sequence[str] = ()) -> str:
    """``rows`` as CSV text with a header: the ``leading`` columns (e.g. ``fold``), then
    :data:`IMAGE_SCORE_COLUMNS`, empty where unknown."""
    text = io.StringIO()
    writer = csv.DictWriter(
        text,
        fieldnames=(*leading, *IMAGE_SCORE_COLUMNS),
        restval="",
        extrasaction="ignore",
        lineterminator="\n",
    )
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def write_image_scores(
    path: Path, rows: Iterable[Mapping[str, Any]], leading: Sequence[str] = ()
) -> Path:
    """Write per-image rows to ``path`` atomically, after the ``leading`` columns."""
    return atomic_write_text(path, image_scores_csv(rows, leading))
