"""Helper processes end with the process that started them, even when it is SIGKILLed.

A DataLoader worker or a pool worker whose parent is killed (SIGKILL, the OOM killer) is not
told: it waits for work from a pipe that its siblings still hold open, so it never sees the
end, and holds its memory forever. :func:`die_with_parent`, called first thing in the helper
(a DataLoader ``worker_init_fn``, a pool ``initializer``), asks Linux to SIGKILL it when the
parent ends (``prctl(PR_SET_PDEATHSIG)``). multiprocessing's resource tracker needs nothing:
it ends by itself once every process holding its pipe has.

The signal comes when the *thread* that started the helper ends, so helpers must be started
from a thread that lives as long as the process (the main thread, as the commands do).
Elsewhere than Linux nothing changes.

A SIGTERM sent to a whole process group (systemd, SLURM, ``kill -TERM -<group>``) reaches
the helpers too: a DataLoader worker it ended would make its parent fail ("DataLoader worker
is killed by signal") in the middle of its own clean stop. :func:`leave_stopping_to_parent`
makes such a helper ignore SIGTERM: its parent stops it, or it dies with its parent.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

log = logging.getLogger(__name__)

#: ``prctl`` option: the signal this process gets when its parent ends (``linux/prctl.h``).
PR_SET_PDEATHSIG = 1


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
