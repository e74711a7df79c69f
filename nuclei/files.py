"""Writing files: nothing half-written, and a full disk named as such.

Every file the package writes (run records, checkpoints, prediction outputs) goes through
:func:`atomic_path`: it is written to a hidden temporary file in its target's own folder and
renamed over the target (``os.replace``, atomic on POSIX), so a process killed mid-write
leaves the previous file or the new one, never half of one. (Lightning's own checkpoint
writer stages files in the system temp folder and moves them, which is a copy, not a
rename, when that folder is on another file system.)

A write that runs out of space fails deep inside a library (Python's buffered writer says
``81920 requested and 48040 written``, torch's zip writer ``file write failed``) without
naming the file. :func:`naming_full_disk` turns such a failure into a
:class:`DiskFullError` that says which file and how much room is left.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: Error numbers that mean "no room": no space left, disk quota exceeded.
NO_ROOM = (errno.ENOSPC, errno.EDQUOT)
#: Below this many free bytes, a write that failed without an error number is taken to have
#: failed for lack of room.
NEARLY_FULL_BYTES = 1 << 20
#: How libraries word a short write that carries no error number.
SHORT_WRITE_WORDS = ("requested and", "write failed", "unexpected pos")


class DiskFullError(OSError):
    """A file could not be written because its disk (or quota) is full."""


def free_bytes(path: Path) -> int | None:
    """Free bytes on the file system of ``path`` (its nearest existing folder)."""
    for folder in (path, *path.parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return None
    return None


def is_disk_full(exc: BaseException, path: Path) -> bool:
    """Whether ``exc``, raised while writing ``path``, means its disk has no room left."""
    if isinstance(exc, OSError) and exc.errno in NO_ROOM:
        return True
    free = free_bytes(path)
    words = str(exc)
    return (
        free is not None
        and free < NEARLY_FULL_BYTES
        and any(word in words for word in SHORT_WRITE_WORDS)
    )


@contextmanager
def naming_full_disk(path: str | Path) -> Iterator[None]:
    """Raise :class:`DiskFullError` naming ``path`` when the writes inside run out of room."""
    path = Path(path)
    try:
        yield
    except (OSError, RuntimeError) as exc:
        if isinstance(exc, DiskFullError) or not is_disk_full(exc, path):
            raise
        free = free_bytes(path)
        left = f"{free:,} bytes left" if free is not None else "no room left"
        error = DiskFullError(
            f"{path}: the disk is full ({left}); free some space or write elsewhere"
        )
        error.errno = errno.ENOSPC
        raise error from exc


def _current_umask() -> int:
    """The process's file-creation mask (reading it means setting it, so set it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed to ``path`` if the block succeeds.

    The temporary name is hidden (``.<name>.partial-<random><suffix>``) and keeps the
    suffix, for writers that choose a format by it; it is removed if the block fails (a
    killed process leaves it, for :func:`nuclei.inference.output_folder.remove_leftovers`).
    The file gets the permissions ``open()`` would give it, and is on disk before the rename.
    """
    path = Path(path)
    with naming_full_disk(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(
            prefix=f".{path.name}.partial-", suffix=path.suffix, dir=path.parent
        )
        os.close(descriptor)
        temporary = Path(name)
        try:
            yield temporary
            os.chmod(temporary, 0o666 & ~_current_umask())  # mkstemp makes it private (0600)
            with temporary.open("rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(text.encode("utf-8"))
    return Path(path)


def atomic_write_json(path: str | Path, record: Mapping[str, Any]) -> Path:
    """Write ``record`` as indented, key-sorted JSON through :func:`atomic_path`."""
    return atomic_write_text(path, json.dumps(dict(record), indent=2, sort_keys=True) + "\n")
