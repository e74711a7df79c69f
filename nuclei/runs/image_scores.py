"""The per-image scores of an evaluation as a CSV file (one row per image, written atomically)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from nuclei.files import atomic_write_text
from nuclei.metrics.image_rows import IMAGE_ROW_COLUMNS

#: The file's columns: the image, where it comes from, then its scores.
IMAGE_SCORE_COLUMNS = (IMAGE_ROW_COLUMNS[0], "source", *IMAGE_ROW_COLUMNS[1:])


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
    """Write per-image rows (see :mod:`nuclei.metrics.image_rows`) to ``path`` atomically,
    after the ``leading`` columns."""
    return atomic_write_text(path, image_scores_csv(rows, leading))
