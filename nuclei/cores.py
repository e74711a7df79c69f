"""The CPU cores this process may use: its CPU affinity, where ``os.cpu_count()`` counts the
whole machine's. Under SLURM (``cpus_per_task``), ``taskset`` or a container's cpuset that is
the share the process was given; thread and worker counts are sized from it."""

from __future__ import annotations

import os


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity; ``os.cpu_count()`` off Linux)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no sched_getaffinity (macOS, Windows)
        return os.cpu_count() or 1
