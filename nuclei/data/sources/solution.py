"""Read a Kaggle solution CSV (``stage1_solution.csv``) into per-image instance label images.

The file has one row per nucleus: ``ImageId,EncodedPixels,Height,Width[,Usage]``. Height and
Width may be absent (a plain submission file); the image then gives the size. Every row is
checked when the file is read, and each problem names the file, the line and the image.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nuclei.data.sources.rle import RLEError, parse_rle, runs_to_flat_indices

REQUIRED_COLUMNS = ("ImageId", "EncodedPixels")
SIZE_COLUMNS = ("Height", "Width")


class SolutionError(ValueError):
    """A solution CSV is unreadable or malformed; the message names the file and the rows."""


@dataclass(frozen=True)
class SolutionRow:
    """One nucleus: the CSV line it came from and its runs (0-based start, length)."""

    line: int
    runs: np.ndarray


@dataclass(frozen=True)
class SolutionImage:
    """All rows of one image; ``shape`` is None when the CSV has no Height/Width columns."""

    path: Path
    image_id: str
    shape: tuple[int, int] | None
    rows: tuple[SolutionRow, ...]


@dataclass
class Solution:
    """A parsed solution CSV: images by id, and row problems by image id."""

    path: Path
    images: dict[str, SolutionImage]
    problems: dict[str, list[str]]


def _int_field(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} {value!r} is not an integer") from None
    if number < 1:
        raise ValueError(f"{name} {number} must be positive")
    return number


def parse_solution(path: str | Path) -> Solution:
    """Read and check every row; file-level problems raise, row problems are gathered."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            missing = [name for name in REQUIRED_COLUMNS if name not in header]
            if missing:
                raise SolutionError(
                    f"{path}: expected a CSV with columns ImageId,EncodedPixels[,Height,Width], "
                    f"missing {', '.join(missing)} (header: {','.join(header) or 'empty file'})"
                )
            column = {name: header.index(name) for name in header}
            has_size = all(name in column for name in SIZE_COLUMNS)
            rows: dict[str, list[SolutionRow]] = defaultdict(list)
            shapes: dict[str, tuple[int, int]] = {}
            problems: dict[str, list[str]] = defaultdict(list)
            for record in reader:
                if not any(field.strip() for field in record):
                    continue  # blank line
                line = reader.line_num
                if len(record) < len(header):
                    problems[record[0].strip() if record else ""].append(
                        f"{path} line {line}: expected {len(header)} fields, got {len(record)}"
                    )
                    continue
                image_id = record[column["ImageId"]].strip()
                where = f"{path} line {line} (image {image_id})"
                try:
                    shape = None
                    if has_size:
                        shape = (
                            _int_field(record[column["Height"]], "Height"),
                            _int_field(record[column["Width"]], "Width"),
                        )
                        known = shapes.setdefault(image_id, shape)
                        if known != shape:
                            raise ValueError(
                                f"size {shape[0]}x{shape[1]} differs from the image's earlier "
                                f"rows ({known[0]}x{known[1]})"
                            )
                    n_pixels = None if shape is None else shape[0] * shape[1]
                    runs = parse_rle(record[column["EncodedPixels"]], n_pixels)
                except (RLEError, ValueError) as exc:
                    problems[image_id].append(f"{where}: {exc}")
                    continue
                rows[image_id].append(SolutionRow(line, runs))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SolutionError(f"{path}: cannot be read as a solution CSV ({exc})") from exc
    images = {
        image_id: SolutionImage(path, image_id, shapes.get(image_id), tuple(image_rows))
        for image_id, image_rows in rows.items()
    }
    for image_id in problems:  # an image whose every row is bad is still an image of the file
        images.setdefault(image_id, SolutionImage(path, image_id, shapes.get(image_id), ()))
    return Solution(path, images, dict(problems))


def read_solution(path: str | Path) -> dict[str, SolutionImage]:
    """Read a solution CSV by image id, raising one error that lists every malformed row."""
    solution = parse_solution(path)
    messages = [message for found in solution.problems.values() for message in found]
    if messages:
        raise SolutionError(
            f"{solution.path}: {len(messages)} malformed row(s):\n  " + "\n  ".join(messages)
        )
    return solution.images


def solution_labels(image: SolutionImage, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Decode an image's rows into an int32 (H, W) label image: row k of the image is label k.

    ``shape`` (the image's size) is required when the CSV has no Height/Width; when both are
    known they must agree. Overlapping nuclei raise :class:`SolutionError` naming both lines.
    """
    if shape is None:
        shape = image.shape
    if shape is None:
        raise ValueError(f"{image.path}: no Height/Width for image {image.image_id}; pass shape")
    height, width = (int(side) for side in shape)
    if image.shape is not None and image.shape != (height, width):
        raise SolutionError(
            f"{image.path}: image {image.image_id} is {height}x{width} but its rows say "
            f"{image.shape[0]}x{image.shape[1]} (line {image.rows[0].line if image.rows else '?'})"
        )
    flat = np.zeros(height * width, dtype=np.int32)
    owner_line = {}
    for label, row in enumerate(image.rows, start=1):
        if len(row.runs) and int(row.runs[-1].sum()) > flat.size:
            raise SolutionError(
                f"{image.path} line {row.line} (image {image.image_id}): runs end at pixel "
                f"{int(row.runs[-1].sum())}, past the image's {flat.size} pixels"
            )
        pixels = runs_to_flat_indices(row.runs)
        taken = flat[pixels]
        if taken.any():
            other = owner_line[int(taken[taken > 0][0])]
            raise SolutionError(
                f"{image.path} line {row.line} (image {image.image_id}): nucleus overlaps the "
                f"one on line {other} ({int((taken > 0).sum())} shared pixels)"
            )
        flat[pixels] = label
        owner_line[label] = row.line
    return np.ascontiguousarray(flat.reshape(width, height).T)
