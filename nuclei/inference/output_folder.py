"""A prediction's output folder: where it may be, who holds it, and what it keeps of each
finished image.

Never the input, nor inside it. An output equal to the input folder, inside it, or holding
the input would mix the images with the files made of them: an image named like another's
mask (``a_mask.png``) would be overwritten, and a rerun would read the outputs as new
images. :func:`refuse_overlap` refuses those (symbolic links followed) before anything is
read or written.

Records let an interrupted run continue where it stopped. They live in the output's
hidden ``.nuclei-predict/`` folder. Once every file of an image is written, its record
(``done/<id>.json``: the files, its ``summary.csv`` row, its ``submission.csv`` rows and its
``nuclei.csv`` table) is written atomically, last. An image is complete when its record is
there and names only files that are there: a run started again on the same output skips it,
and the tables of the whole input are assembled from the records, so they come out the same
whether the images were segmented in one run, in several, or by several processes. An image
that failed leaves ``failed/<id>.json`` with the error instead, removed once it succeeds.
The prediction's own records (``settings.json``, the per-process
``process-<rank>-of-<n>.json``, the lock, each run's config) sit beside those two folders,
so no image, whatever its name, can reach them.

One prediction at a time per output folder, by a lock on ``.nuclei-predict/lock``:
:func:`output_lock` takes an exclusive ``fcntl.flock`` on the file without waiting. The
kernel drops the lock when the holder ends, however it ends (worker processes it forked
share the open file and keep the folder held until they end too), so a killed run's lock is
never stale: the next run takes it over. The file names its holder (pid, host, start time)
for the message of a run refused meanwhile, and is emptied on release.

The Hydra run folder of ``nuclei-predict`` is its output folder, unless the run will be
refused: :func:`predict_run_dir` (the ``nuclei.predict_run_dir`` resolver of
``conf/predict.yaml``) makes the output folder itself Hydra's run folder, so the log and the
composed config of a run are kept with its results. When that folder overlaps the input,
cannot be made, or is held by a running prediction of this host, the command refuses it, and
Hydra's own files go to the folder it would use without ``output=`` instead of into it."""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import math
import os
import socket
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from nuclei.files import atomic_path


class OutputFolderError(ValueError):
    """An output folder a prediction may not write into: the input's, or one in use."""


def _canonical(path: str | Path) -> Path:
    """``path`` absolute, with symbolic links and ``..`` resolved (it need not exist)."""
    return Path(path).expanduser().resolve()


def overlap(source: str | Path, output: str | Path) -> str | None:
    """Why ``output`` may not hold the prediction of ``source`` (a file or folder), or None."""
    image_side, output_side = _canonical(source), _canonical(output)
    if output_side == image_side:
        return f"output={output} is the input {source} itself"
    if image_side in output_side.parents:
        return f"output={output} is inside the input folder {source}"
    if output_side in image_side.parents:
        return f"the input {source} is inside output={output}"
    return None


def refuse_overlap(source: str | Path, output: str | Path) -> None:
    """Raise :class:`OutputFolderError` (one line) when ``output`` overlaps ``source``."""
    problem = overlap(source, output)
    if problem is not None:
        raise OutputFolderError(
            f"{problem}: the files made of the images would mix with them (a mask can replace "
            "an image named like it, a rerun would segment the outputs); choose an output "
            "folder outside the input"
        )


def can_be_made(folder: str | Path) -> bool:
    """Whether ``folder`` is, or can be created as, a folder this process may write into."""
    path = Path(folder).expanduser().absolute()
    while not path.exists():
        if path.parent == path:
            return False
        path = path.parent
    if not path.is_dir():
        return False
    try:  # a real try: permissions say little for root, or on read-only and virtual mounts
        os.rmdir(tempfile.mkdtemp(prefix=".nuclei-probe-", dir=path))
    except OSError:
        return False
    return True


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


log = logging.getLogger(__name__)

#: The lock's file name, in the records folder.
LOCK_FILE = "lock"
#: flock errors of a file system without locks: the prediction goes on, unguarded.
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


def _open_lock_file(output_dir: Path) -> int:
    """The lock file's descriptor, the output and records folders made first."""
    try:
        records_dir(output_dir).mkdir(parents=True, exist_ok=True)
        return os.open(records_dir(output_dir) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise OutputFolderError(
            f"output={output_dir} cannot be written ({exc.strerror or exc}); choose a "
            "folder this user may create and write"
        ) from None


def _named_holder(text: str | bytes) -> tuple[int, str, str] | None:
    """The pid, host and start time a lock file's text names, or None."""
    try:
        held = json.loads(text)
        return int(held["pid"]), str(held["host"]), str(held["started"])
    except (ValueError, KeyError, TypeError):
        return None


def _holder(descriptor: int) -> str:
    """Who holds the lock, in words, from the lock file."""
    named = _named_holder(os.pread(descriptor, 4096, 0))
    if named is None:
        return "a process that has not named itself yet"
    pid, host, started = named
    words = f"pid {pid} on {host}, started {started}"
    if host == socket.gethostname() and not _alive(pid):
        words += "; it has ended, a worker process it started still holds the folder"
    return words


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this host runs (another user's included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _acquire(descriptor: int, output_dir: Path) -> bool:
    """Lock without waiting; False on a file system without locks. Held: OutputFolderError."""
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise OutputFolderError(
            f"output={output_dir} is in use by another prediction ({_holder(descriptor)}); "
            "wait for it to end, or choose another output folder"
        ) from None
    except OSError as exc:
        if exc.errno not in _NO_LOCKS:
            raise
        log.warning("%s: cannot be locked (%s); nothing keeps a second run out", output_dir, exc)
        return False
    return True


def _name_holder(descriptor: int) -> None:
    """Write this process's pid, host and start time into the lock file."""
    started = datetime.now().astimezone().isoformat(timespec="seconds")
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": started}
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, (json.dumps(holder) + "\n").encode(), 0)


def held_here(output_dir: str | Path) -> bool:
    """Whether the lock file of ``output_dir`` names another running process of this host (read
    only: a hint, e.g. to keep a refused run's own files out; :func:`output_lock` decides)."""
    try:
        named = _named_holder((records_dir(Path(output_dir)) / LOCK_FILE).read_bytes())
    except OSError:
        return False
    if named is None or named[0] == os.getpid():  # this process holds it: not another run
        return False
    return named[1] == socket.gethostname() and _alive(named[0])


@contextmanager
def output_lock(output_dir: str | Path) -> Iterator[Path]:
    """Hold ``output_dir`` for one prediction during the block (the folder is made first).

    Raises :class:`OutputFolderError` naming the holder when another prediction holds it,
    or when the folder cannot be made.
    """
    output_dir = Path(output_dir)
    descriptor = _open_lock_file(output_dir)
    try:
        locked = _acquire(descriptor, output_dir)
    except BaseException:
        os.close(descriptor)
        raise
    try:
        if locked:
            _name_holder(descriptor)
        yield output_dir
    finally:
        if locked:
            os.ftruncate(descriptor, 0)
            fcntl.flock(descriptor, fcntl.LOCK_UN)  # also for the workers sharing the file
        os.close(descriptor)


def predict_run_dir(source: Any, output: Any, otherwise: Any) -> str:
    """``${nuclei.predict_run_dir:INPUT,OUTPUT,OTHERWISE}``: ``output`` (absolute) when a
    prediction of ``source`` may write into it now; else ``otherwise`` (``output`` null, or
    overlapping the input, impossible to make, held by another run)."""
    if source is None or output is None or overlap(str(source), str(output)) is not None:
        return str(otherwise)  # overlap first: nothing, not even a probe, touches the input
    if not can_be_made(str(output)) or held_here(str(output)):
        return str(otherwise)
    return str(Path(str(output)).expanduser().absolute())


def register_predict_run_dir() -> None:
    """Register the ``nuclei.predict_run_dir`` config resolver (once)."""
    from omegaconf import OmegaConf  # here: the postprocessing workers import this module

    if not OmegaConf.has_resolver("nuclei.predict_run_dir"):
        OmegaConf.register_new_resolver("nuclei.predict_run_dir", predict_run_dir)
