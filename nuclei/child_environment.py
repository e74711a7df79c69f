"""Environment variables for the processes started inside a block, and only for them.

Spawned worker processes read variables such as ``OMP_NUM_THREADS`` or ``MALLOC_*`` once,
at start-up: the parent sets them while it starts its workers, then restores its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

#: The numeric libraries (OpenMP, OpenBLAS, MKL) on one thread each: worker processes that
#: share the cores between them must not each start a thread per core.
ONE_THREAD_EACH = dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), "1")


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
