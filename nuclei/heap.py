"""Keep freed memory in the process's heap for reuse, instead of handing it back to the system.

On a CPU, a network's forward and backward passes allocate and free tensors of tens to
hundreds of MB at every layer. glibc's ``malloc`` serves blocks that large with ``mmap`` and
returns them with ``munmap`` (and trims the heap's free top back to the system), so every
pass maps fresh pages and the kernel zeroes each one on first touch: with a 16-channel U-Net
on a 1024x1024 image, 620,000 page faults and 1.06 s of system time per forward, half its CPU.
:func:`keep_freed_memory` raises the ``mmap`` threshold (1 GiB) and the trim threshold
(2 GiB) with ``mallopt``, so freed blocks stay in the heap and the next pass reuses them: the
same forward then takes 0.65 s instead of 1.27 s on 2 cores, for a peak resident memory 22%
higher (``scripts/benchmark_heap.py``). Every ``nuclei-*`` command calls it at
start-up (DataLoader workers forked from it inherit it); a notebook can call it too.

Nothing changes where ``malloc`` is not glibc's, or when the user set ``MALLOC_MMAP_THRESHOLD_``
or ``MALLOC_TRIM_THRESHOLD_`` (their choice stands), or ``NUCLEI_KEEP_FREED_MEMORY=0``.
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

#: ``mallopt`` parameters (glibc's ``malloc.h``).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from the heap (and are reused) rather than from ``mmap``.
MMAP_THRESHOLD = 1 << 30
#: Free memory at the heap's top is given back to the system beyond this much.
TRIM_THRESHOLD = (1 << 31) - 1  # the largest value mallopt's int takes
#: Set to 0 to leave ``malloc`` as it is.
SWITCH_VARIABLE = "NUCLEI_KEEP_FREED_MEMORY"
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


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
    if os.environ.get(SWITCH_VARIABLE, "1") == "0":
        return False
    if any(name in os.environ for name in _USER_SETTINGS):
        return False
    libc = _glibc()
    if libc is None:
        return False
    applied = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    applied = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and applied
    if not applied:
        log.debug("mallopt refused the thresholds; malloc left as it is")
    return applied
