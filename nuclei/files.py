"""Writing files: a full disk named as such, with the file that did not fit.

A write that runs out of space fails deep inside a library (Python's buffered writer says
``81920 requested and 48040 written``, torch's zip writer ``file write failed``) without
naming the file. :func:`naming_full_disk` turns such a failure into a
:class:`DiskFullError` that says which file and how much room is left.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
