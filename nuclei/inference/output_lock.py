"""One prediction at a time per output folder: a lock on ``.nuclei-predict/lock``.

:func:`output_lock` takes an exclusive ``fcntl.flock`` on the file without waiting. The kernel
drops the lock when the holder ends, however it ends (worker processes it forked share the
open file and keep the folder held until they end too), so a killed run's lock is never
stale: the next run takes it over. The file names its holder (pid, host, start time) for the
message of a run refused meanwhile, and is emptied on release.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from nuclei.inference.image_records import records_dir
from nuclei.inference.output_folder import OutputFolderError

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
