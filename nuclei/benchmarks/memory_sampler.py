"""Peak memory of one stretch of work in this process: resident set size and GPU memory.

The process's lifetime peak (``ru_maxrss``) cannot tell two phases of a benchmark apart;
:class:`PeakMemory` samples the resident set size from ``/proc/self/statm`` in a thread
every few milliseconds while its block runs, and on a GPU resets and reads
``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType

import torch

from nuclei.benchmarks.resources import peak_rss_mb

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_mib() -> float:
    """This process's resident set size now, in MiB (its lifetime peak off Linux)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()
    return pages * PAGE / 2**20


def _status_kib(pid: int, key: str) -> int:
    """A ``kB`` field of ``/proc/<pid>/status`` (0 when the process or field is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    """Every process whose parent is ``pid`` (from ``/proc/*/stat``)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def tree_rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` and all its descendants now, in MiB (pages shared
    between them are counted in each)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        total += _status_kib(current, "VmRSS:")
        pending.extend(_children(current))
    return total / 1024


def peak_rss_of(pid: int) -> float:
    """Peak resident set size (``VmHWM``) of process ``pid`` so far, in MiB."""
    return _status_kib(pid, "VmHWM:") / 1024


class PeakMemory:
    """``with PeakMemory(device) as peak: ...``; then ``peak.rss_mib`` (and ``gpu_mib``)."""

    def __init__(self, device: torch.device | str = "cpu", interval_s: float = 0.005) -> None:
        self.device = torch.device(device)
        self.interval_s = interval_s
        self.rss_mib = 0.0
        self.gpu_mib: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            self.rss_mib = max(self.rss_mib, rss_mib())
            if self._stop.wait(self.interval_s):
                return

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self.rss_mib = rss_mib()
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.rss_mib = max(self.rss_mib, rss_mib())
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.gpu_mib = torch.cuda.max_memory_allocated(self.device) / 2**20
