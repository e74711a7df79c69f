"""What a prediction keeps of each finished image, so an interrupted run continues where it stopped.

The records live in the output's hidden ``.nuclei-predict/`` folder. Once every file of an
image is written, its record (``done/<id>.json``: the files, its ``summary.csv`` row, its
``submission.csv`` rows and its ``nuclei.csv`` table) is written atomically, last. An image is
complete when its record is there and names only files that are there: a run started again on
the same output skips it, and the tables of the whole input are assembled from the records, so
they come out the same whether the images were segmented in one run, in several, or by several
processes. An image that failed leaves ``failed/<id>.json`` with the error instead, removed
once it succeeds. The prediction's own records (``settings.json``, the per-process
``process-<rank>-of-<n>.json``, the lock, each run's config) sit beside those two folders, so
no image, whatever its name, can reach them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from nuclei.inference.output_files import atomic_path

#: The hidden folder of a prediction's output that holds the records.
RECORDS_DIR = ".nuclei-predict"
#: The settings of the prediction the records belong to, in the records folder.
SETTINGS_FILE = "settings.json"
#: The folders, in the records folder, of the complete images' and the failed images' records.
DONE_DIR, FAILED_DIR = "done", "failed"


@dataclass
class ImageRecord:
    """One segmented image: its files, table rows and the nuclei measured on it."""

    image_id: str
    source: str
    files: list[str]
    summary: dict[str, Any]
    submission: list[str]
    nuclei: pd.DataFrame = field(repr=False)

    @property
    def count(self) -> int:
        """Number of nuclei found."""
        return len(self.nuclei)


def records_dir(output_dir: Path) -> Path:
    """The folder of the records of a prediction into ``output_dir``."""
    return Path(output_dir) / RECORDS_DIR


def record_path(output_dir: Path, image_id: str) -> Path:
    """Where the record of the complete image ``image_id`` is kept."""
    return records_dir(output_dir) / DONE_DIR / f"{image_id}.json"


def failure_path(output_dir: Path, image_id: str) -> Path:
    """Where the error of the image ``image_id`` that failed is kept."""
    return records_dir(output_dir) / FAILED_DIR / f"{image_id}.json"


def _plain(value: Any) -> Any:
    """A JSON value of a table cell (NaN as null)."""
    return None if isinstance(value, float) and math.isnan(value) else value


def _column_json(column: pd.Series) -> list[Any]:
    """A column's cells as JSON values (NaN as null); a column without NaN as it is."""
    values = column.tolist()
    return [_plain(v) for v in values] if column.isna().any() else values


def _table_json(table: pd.DataFrame) -> dict[str, Any]:
    """A table as columns, dtypes and column-wise values, exact for floats (``repr``)."""
    return {
        "columns": [str(c) for c in table.columns],
        "dtypes": [str(t) for t in table.dtypes],
        "values": [_column_json(table[c]) for c in table.columns],
    }


def _table_of(stored: dict[str, Any]) -> pd.DataFrame:
    """The table :func:`_table_json` stored, with its dtypes."""
    columns = stored["columns"]
    table = pd.DataFrame(dict(zip(columns, stored["values"], strict=True)), columns=columns)
    return table.astype(dict(zip(columns, stored["dtypes"], strict=True)))


def _write_json(path: Path, record: dict[str, Any]) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(record, sort_keys=True) + "\n")


def save_record(output_dir: Path, record: ImageRecord) -> Path:
    """Write ``record`` atomically; an earlier failure record of the image is removed."""
    path = record_path(output_dir, record.image_id)
    _write_json(
        path,
        {
            "image": record.image_id,
            "source": record.source,
            "files": record.files,
            "summary": {k: _plain(v) for k, v in record.summary.items()},
            "submission": record.submission,
            "nuclei": _table_json(record.nuclei),
        },
    )
    failure_path(output_dir, record.image_id).unlink(missing_ok=True)
    return path


def load_record(output_dir: Path, image_id: str) -> ImageRecord | None:
    """The record of a complete image: None when missing, unreadable, or a file is gone."""
    try:
        stored = json.loads(record_path(output_dir, image_id).read_text())
        record = ImageRecord(
            image_id=stored["image"],
            source=stored["source"],
            files=list(stored["files"]),
            summary=dict(stored["summary"]),
            submission=list(stored["submission"]),
            nuclei=_table_of(stored["nuclei"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not all((Path(output_dir) / name).is_file() for name in record.files):
        return None
    return record


def complete_images(output_dir: Path, image_ids: Iterable[str]) -> set[str]:
    """The ids among ``image_ids`` whose record and files are all in ``output_dir``."""
    return {i for i in image_ids if load_record(output_dir, i) is not None}


def forget_images(output_dir: Path, image_ids: Iterable[str]) -> None:
    """Remove the records of ``image_ids`` (they are redone: incomplete until written)."""
    for image_id in image_ids:
        record_path(output_dir, image_id).unlink(missing_ok=True)
        failure_path(output_dir, image_id).unlink(missing_ok=True)


def check_settings(output_dir: Path, settings: dict[str, Any], overwrite: bool) -> None:
    """Refuse to continue a prediction made with other settings (nothing is written).

    ``settings``: what decides the output files (checkpoint digest, sizes, postprocessing,
    file options). An earlier run's differ: ValueError naming the differing keys, unless
    ``overwrite`` (every image is then redone).
    """
    stored = _read_json(records_dir(output_dir) / SETTINGS_FILE)
    plain = _plain_json(settings)
    if stored is not None and stored != plain and not overwrite:
        differing = sorted(k for k in set(stored) | set(plain) if stored.get(k) != plain.get(k))
        raise ValueError(
            f"{output_dir} holds a prediction made with other settings (differing: "
            f"{', '.join(differing)}); pass overwrite=true to redo every image with these, "
            "or choose another output folder"
        )


def save_settings(output_dir: Path, settings: dict[str, Any]) -> None:
    """Record the settings the folder's images are made with, once :func:`check_settings`
    accepted them."""
    _write_json(records_dir(output_dir) / SETTINGS_FILE, _plain_json(settings))


def _plain_json(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` as it reads back from JSON (tuples as lists, paths as strings)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def save_failure(output_dir: Path, image_id: str, source: str, error: str) -> None:
    """Record that an image could not be segmented, and why (the message names the file)."""
    _write_json(
        failure_path(output_dir, image_id), {"image": image_id, "source": source, "error": error}
    )


def load_failure(output_dir: Path, image_id: str) -> str | None:
    """The error recorded for an image that failed, or None."""
    try:
        return str(json.loads(failure_path(output_dir, image_id).read_text())["error"])
    except (OSError, ValueError, KeyError):
        return None


def save_share(output_dir: Path, rank: int, processes: int, image_ids: list[str]) -> Path:
    """Record which images process ``rank`` of ``processes`` wrote in the latest run
    (``process-<rank>-of-<processes>.json`` in the records folder)."""
    path = records_dir(output_dir) / f"process-{rank}-of-{processes}.json"
    _write_json(path, {"rank": rank, "processes": processes, "images": sorted(image_ids)})
    return path


def remove_leftovers(output_dir: Path) -> list[Path]:
    """Delete the hidden temporary files a killed run left (``.<name>.<random><suffix>``).

    Only files an atomic write names that way are removed (beside the outputs and in the
    records folders); call it before any process of a new run starts writing.
    """
    removed = []
    records = records_dir(output_dir)
    for folder in (Path(output_dir), records, records / DONE_DIR, records / FAILED_DIR):
        if not folder.is_dir():
            continue
        for path in folder.glob(".*.partial-*"):
            if path.is_file():
                path.unlink()
                removed.append(path)
    return removed
