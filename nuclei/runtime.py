"""The process the package runs in: its cores, its memory, its helper processes, its progress bar.

- Cores: :func:`available_cores` is the CPU affinity of the process (a SLURM job's
  ``cpus_per_task``, ``taskset``, a container's cpuset), where ``os.cpu_count()`` counts the
  whole machine; thread and helper counts are sized from it.
- Memory: :func:`keep_freed_memory` keeps freed blocks in the heap for reuse. On a CPU, a
  network's passes allocate and free tensors of tens to hundreds of MB at every layer; glibc's
  ``malloc`` serves blocks that large with ``mmap`` and returns them with ``munmap``, so every
  pass maps fresh pages that the kernel zeroes on first touch (with a 16-channel U-Net on a
  1024x1024 image, 620,000 page faults and half the forward's CPU time). Raising the ``mmap``
  threshold (1 GiB) and the trim threshold (2 GiB) with ``mallopt`` keeps them for the next
  pass (``benchmarks/``). Every ``nuclei-*`` command calls it at start-up (DataLoader workers
  forked from it inherit it); a notebook can call it too. Nothing changes where ``malloc`` is
  not glibc's, when the user set ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_``, or
  with ``NUCLEI_KEEP_FREED_MEMORY=0``.
- Helper processes (DataLoader workers, pool workers):

  - :func:`child_environment` sets variables such as ``OMP_NUM_THREADS`` only while the
    helpers start (they read them once, at start-up);
  - :func:`lower_priority` lowers their CPU priority: on few cores the network's threads
    and the helpers compete, and a network thread that loses its core stalls its partners,
    so helpers take the cores the network leaves idle and yield them when it needs them;
  - :func:`die_with_parent` ends a helper with the process that started it, even when that
    one is SIGKILLed (a helper waiting on a pipe its siblings hold open would otherwise
    never see the end, and hold its memory forever): Linux's ``prctl(PR_SET_PDEATHSIG)``.
    The signal comes when the *thread* that started the helper ends, so helpers must be
    started from a thread that lives as long as the process (the main thread, as the
    commands do);
  - :func:`leave_stopping_to_parent` makes a helper ignore a SIGTERM sent to the whole
    process group (systemd, SLURM): a DataLoader worker it ended would make its parent fail
    in the middle of its own clean stop.
- :func:`progress_bar`: the one progress bar of every long job.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

log = logging.getLogger(__name__)

#: The numeric libraries (OpenMP, OpenBLAS, MKL) on one thread each: worker processes that
#: share the cores between them must not each start a thread per core.
ONE_THREAD_EACH = dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), "1")
#: ``nice`` increment of decoding and postprocessing processes (0: same priority).
HELPER_NICENESS = 10
#: ``mallopt`` parameters (glibc's ``malloc.h``).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from the heap (and are reused) rather than from ``mmap``.
MMAP_THRESHOLD = 1 << 30
#: Free memory at the heap's top is given back to the system beyond this much.
TRIM_THRESHOLD = (1 << 31) - 1  # the largest value mallopt's int takes
#: Set to 0 to leave ``malloc`` as it is.
KEEP_FREED_MEMORY_VARIABLE = "NUCLEI_KEEP_FREED_MEMORY"
_USER_MALLOC_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
#: ``prctl`` option: the signal this process gets when its parent ends (``linux/prctl.h``).
PR_SET_PDEATHSIG = 1


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity; ``os.cpu_count()`` off Linux)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no sched_getaffinity (macOS, Windows)
        return os.cpu_count() or 1


def default_postprocess_workers() -> int:
    """Processes for postprocessing: one per core, at most 4. At their lower priority they
    take what the network leaves; when it waits for them, every core finishes images (on 2
    cores, 2 workers instead of 1 took nuclei-predict from 44.6 to 40.1 s on 16 images)."""
    return max(1, min(4, available_cores()))


def default_decode_workers() -> int:
    """DataLoader workers decoding images: one per four cores, at least one, at most four."""
    return max(1, min(4, available_cores() // 4))


def _glibc() -> ctypes.CDLL | None:
    """This process's C library when it is glibc (it has ``mallopt``), else None. Looked up
    among the symbols the process already has (``CDLL(None)``), not with
    ``ctypes.util.find_library``, which runs ``ldconfig`` in a subprocess."""
    if os.name != "posix":
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  (glibc only: musl and macOS lack it)
        return libc
    except (OSError, AttributeError):
        return None


def keep_freed_memory() -> bool:
    """Make this process's ``malloc`` keep freed large blocks for reuse (see the module);
    True when it did, False when it left ``malloc`` as it is."""
    if os.environ.get(KEEP_FREED_MEMORY_VARIABLE, "1") == "0":
        return False
    if any(name in os.environ for name in _USER_MALLOC_SETTINGS):
        return False
    libc = _glibc()
    if libc is None:
        return False
    applied = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    applied = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and applied
    if not applied:
        log.debug("mallopt refused the thresholds; malloc left as it is")
    return applied


@contextmanager
def child_environment(variables: Mapping[str, str]) -> Iterator[None]:
    """Set ``variables`` in ``os.environ`` for the block; restore (or remove) them after."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def lower_priority(worker_id: int | None = None) -> None:
    """Lower this process's CPU priority by :data:`HELPER_NICENESS` (a DataLoader
    ``worker_init_fn`` or a pool initializer); where the system refuses, run as is."""
    try:
        os.nice(HELPER_NICENESS)
    except (OSError, AttributeError) as exc:  # AttributeError: no os.nice (Windows)
        log.debug("could not lower the priority of process %d: %s", os.getpid(), exc)


def die_with_parent(parent_pid: int) -> bool:
    """Have this process SIGKILLed when its parent ``parent_pid`` ends, and end it now when
    that parent has already ended; True when set, False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        failed = libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0
    except (OSError, AttributeError):  # no prctl in this C library
        failed = True
    if failed:
        log.debug("process %d cannot be set to end with its parent", os.getpid())
        return False
    if os.getppid() != parent_pid:  # it ended before the request: no signal will come
        os.kill(os.getpid(), signal.SIGKILL)
    return True


def leave_stopping_to_parent() -> None:
    """Ignore SIGTERM in this helper process: its parent stops it (see the module). Only for
    helpers whose parent does not stop them with SIGTERM and wait (a DataLoader's workers,
    which it joins with a time limit; not a ``multiprocessing.Pool``'s)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def progress_bar(
    enabled: bool = True, transient: bool = False, show_current: bool = False
) -> Progress:
    """A rich bar: the task's description, a bar, ``done/total``, elapsed and remaining time.

    ``show_current`` adds the task's ``current`` field (what is being worked on, set with
    ``bar.update(task, current=...)``); ``transient`` clears the bar once it is done.
    """
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
    ]
    if show_current:
        columns.append(TextColumn("{task.fields[current]}"))
    columns += [TimeElapsedColumn(), TimeRemainingColumn()]
    return Progress(*columns, disable=not enabled, transient=transient)
