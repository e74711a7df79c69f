"""Read and check the user's split files: a folds file (nnU-Net's ``splits_final.json``, or a
CSV of ``id,fold``) and a CSV of ``id,group`` to stratify by.

Every problem of a file is gathered and reported together in one
:class:`~nuclei.data.validation.DataValidationError` that names the file.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Collection, Iterable
from pathlib import Path

from nuclei.data.validation import DataValidationError, some

log = logging.getLogger(__name__)

#: One fold of a folds file: its (train ids, val ids), each sorted.
Fold = tuple[list[str], list[str]]

FOLDS_FORMATS = (
    'a folds file is a .json list with one {"train": [ids], "val": [ids]} object per fold '
    "(nnU-Net's splits_final.json) or a .csv with the columns id,fold"
)


def read_folds(path: str | Path, known: Collection[str]) -> list[Fold]:
    """Every fold of a folds file (``.json`` like nnU-Net's ``splits_final.json``, or ``.csv``
    with columns ``id,fold``), checked against the ``known`` ids of the data."""
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _json_folds(path, set(known))
    if suffix == ".csv":
        return _csv_folds(path, set(known))
    raise DataValidationError(str(path), [f"not a .json or .csv file: {FOLDS_FORMATS}"])


def fold_from_file(
    path: str | Path, fold: int, known: Collection[str]
) -> tuple[list[str], list[str], int]:
    """(train, val, number of folds) of fold ``fold`` of a folds file (:func:`read_folds`)."""
    folds = read_folds(path, known)
    if not 0 <= fold < len(folds):
        raise DataValidationError(
            str(Path(path).expanduser()),
            [
                f"data.split.fold={fold} is out of range: the file holds {len(folds)} folds "
                f"(0..{len(folds) - 1})"
            ],
        )
    return (*folds[fold], len(folds))


def read_groups(path: str | Path, known: Collection[str]) -> dict[str, str]:
    """Each known id's group from a CSV with columns ``id,group`` (any text: the source,
    modality or plate of the image); every known id needs one, other ids are ignored."""
    path = Path(path).expanduser()
    rows = _read_csv(path, "group")
    problems = _duplicates(rows)
    empty = [sample_id for _, sample_id, group in rows if not group]
    if empty:
        problems.append(f"{len(empty)} id(s) have an empty group: {some(empty)}")
    groups = {sample_id: group for _, sample_id, group in rows}
    missing = sorted(set(known) - set(groups))
    if missing:
        problems.append(
            f"{len(missing)} image(s) of the data have no group (every image needs one): "
            + some(missing)
        )
    if problems:
        raise DataValidationError(str(path), problems)
    unknown = sorted(set(groups) - set(known))
    if unknown:
        log.warning(
            "%s: %d id(s) are not in the data and are ignored: %s",
            path,
            len(unknown),
            some(unknown),
        )
    return {sample_id: groups[sample_id] for sample_id in sorted(known)}


def _read_csv(path: Path, column: str) -> list[tuple[int, str, str]]:
    """(line, id, ``column`` value) of each row of a CSV whose header has ``id`` and
    ``column`` (other columns are ignored); values stripped of surrounding blanks."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            if "id" not in header or column not in header:
                found = ",".join(header) or "(empty)"
                raise DataValidationError(
                    str(path), [f"needs the columns id,{column}; its header is {found}"]
                )
            at_id, at_value = header.index("id"), header.index(column)
            rows, short = [], []
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) <= max(at_id, at_value):
                    short.append(str(reader.line_num))
                    continue
                rows.append((reader.line_num, row[at_id].strip(), row[at_value].strip()))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataValidationError(str(path), [f"cannot be read as a CSV file: {exc}"]) from exc
    if short:
        raise DataValidationError(
            str(path), [f"line(s) {some(short)} lack the id or {column} value"]
        )
    return rows


def _duplicates(rows: list[tuple[int, str, str]]) -> list[str]:
    """A problem for ids listed twice or empty, else none."""
    problems = []
    lines: dict[str, list[int]] = {}
    for line, sample_id, _ in rows:
        lines.setdefault(sample_id, []).append(line)
    if "" in lines:
        problems.append(f"empty id on line(s) {some(str(n) for n in lines.pop(''))}")
    twice = [f"{i} (lines {', '.join(map(str, n))})" for i, n in lines.items() if len(n) > 1]
    if twice:
        problems.append(f"{len(twice)} id(s) are listed more than once: {some(twice)}")
    return problems


def _unknown(ids: Iterable[str], known: set[str]) -> list[str]:
    """A problem for ids that are not in the data, else none."""
    unknown = sorted(set(ids) - known)
    if not unknown:
        return []
    return [f"{len(unknown)} id(s) are not in the data: {some(unknown)}"]


def _csv_folds(path: Path, known: set[str]) -> list[Fold]:
    """The folds of a CSV of ``id,fold``: fold ``i`` validates the ids marked ``i`` and trains
    on all the others; every image of the data must be in one fold."""
    rows = _read_csv(path, "fold")
    problems = _duplicates(rows)
    fold_of: dict[str, int] = {}
    for line, sample_id, value in rows:
        try:
            fold_of[sample_id] = int(value)
        except ValueError:
            fold_of[sample_id] = -1
        if fold_of[sample_id] < 0:
            problems.append(f"line {line}: fold {value!r} is not an integer >= 0")
    problems += _unknown(fold_of, known)
    missing = sorted(known - set(fold_of))
    if missing:
        problems.append(
            f"{len(missing)} image(s) of the data are in no fold (a cross-validation "
            f"covers every image): {some(missing)}"
        )
    count = max(fold_of.values(), default=-1) + 1
    empty = sorted(set(range(count)) - set(fold_of.values()))
    if empty:
        problems.append(
            f"fold(s) {', '.join(map(str, empty))} of 0..{count - 1} hold no image "
            "(folds are numbered 0..K-1)"
        )
    if 0 < count < 2:
        problems.append("it holds a single fold (0); a cross-validation needs at least 2")
    if problems:
        raise DataValidationError(str(path), problems)
    ids = sorted(fold_of)
    return [
        ([i for i in ids if fold_of[i] != k], [i for i in ids if fold_of[i] == k])
        for k in range(count)
    ]


def _load_json_folds(path: Path) -> list[dict[str, list[str]]]:
    """The file's list of {train, val} entries, each shape checked."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataValidationError(str(path), [f"cannot be read as JSON: {exc}"]) from exc
    if not isinstance(entries, list) or not entries:
        raise DataValidationError(str(path), [f"not a list of folds: {FOLDS_FORMATS}"])
    problems = []
    for k, entry in enumerate(entries):
        sides = [entry.get(side) if isinstance(entry, dict) else None for side in ("train", "val")]
        if not all(isinstance(s, list) and all(isinstance(i, str) for i in s) for s in sides):
            problems.append(f"fold {k}: needs 'train' and 'val' lists of ids (strings)")
        elif not all(sides):
            problems.append(f"fold {k}: its {'train' if not sides[0] else 'val'} side is empty")
    if len(entries) < 2:
        problems.append(
            "it holds a single fold; a cross-validation needs at least 2 (one fixed split "
            'is data.split.file=<a JSON {"train": [...], "val": [...]}>)'
        )
    if problems:
        raise DataValidationError(str(path), problems)
    return entries


def _json_folds(path: Path, known: set[str]) -> list[Fold]:
    """The folds of nnU-Net's ``splits_final.json``: each fold's sides disjoint, over known
    ids, and no image in two folds' val sides."""
    entries = _load_json_folds(path)
    folds: list[Fold] = [(sorted(set(e["train"])), sorted(set(e["val"]))) for e in entries]
    problems = _unknown((i for train, val in folds for i in train + val), known)
    for k, (train, val) in enumerate(folds):
        both = sorted(set(train) & set(val))
        if both:
            problems.append(f"fold {k}: {len(both)} id(s) are in both train and val: {some(both)}")
    for k, (_, val) in enumerate(folds):
        for j in range(k + 1, len(folds)):
            twice = sorted(set(val) & set(folds[j][1]))
            if twice:
                problems.append(
                    f"folds {k} and {j} both validate {len(twice)} id(s): {some(twice)}"
                )
    if problems:
        raise DataValidationError(str(path), problems)
    validated = {i for _, val in folds for i in val}
    if validated != known or any(set(train) | set(val) != known for train, val in folds):
        log.warning(
            "%s: not a complete cross-validation of the data's %d images (%d are in no val "
            "side, or a fold leaves some out): nuclei-eval out_of_fold=true will refuse it",
            path,
            len(known),
            len(known - validated),
        )
    return folds
