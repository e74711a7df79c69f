"""Peak memory and wall clock: of one stretch of work in this process, of other processes,
and of the whole ``nuclei-predict`` on a folder, timed from outside.

The process's lifetime peak (``ru_maxrss``) cannot tell two phases of a benchmark apart;
:class:`PeakMemory` samples the resident set size from ``/proc/self/statm`` in a thread
every few milliseconds while its block runs, and on a GPU resets and reads
``torch.cuda.max_memory_allocated``.

:func:`run_predict` runs the command in its own process, as a user runs it (process start,
checkpoint loading, decoding, network, postprocessing, writing every file). Its memory is
sampled from ``/proc`` while it runs: its own peak resident set size (``VmHWM``; ``wait4``'s
``ru_maxrss`` would report this process's peak, inherited through ``vfork`` and ``exec``) and
the peak of the sum over it and its worker processes. :func:`completion_times` reads when
each image was done from the records the command writes, for its throughput once it is
running.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import torch

from benchmarks.common import peak_rss_mb
from nuclei.inference.output_folder import record_path

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
SAMPLE_S = 0.1  # seconds between memory samples of a command


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


def predict_executable() -> Path:
    """The ``nuclei-predict`` script installed beside this Python."""
    return Path(sys.executable).parent / "nuclei-predict"


def run_predict(
    checkpoint: Path,
    source: Path,
    output: Path,
    device: str,
    overrides: Sequence[str] = (),
    megapixels: float | None = None,
    log_file: Path | None = None,
) -> dict[str, Any]:
    """Run ``nuclei-predict ckpt_path=... input=... output=... device=... [overrides]``.

    Returns its exit status, wall-clock seconds, peak resident set sizes (MiB), the command,
    and megapixels/s when ``megapixels`` (of the folder's images) is given. Its output goes
    to ``log_file`` (default ``output``/../predict.log).
    """
    command = [
        str(predict_executable()),
        f"ckpt_path={checkpoint}",
        f"input={source}",
        f"output={output}",
        f"device={device}",
        "progress_bar=false",
        *overrides,
    ]
    log_file = log_file or output.parent / f"{output.name}.log"
    own_peak = tree_peak = 0.0
    with log_file.open("w") as log:
        started_at = time.time()
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        while process.poll() is None:
            own_peak = max(own_peak, peak_rss_of(process.pid))
            tree_peak = max(tree_peak, tree_rss_mib(process.pid))
            time.sleep(SAMPLE_S)
        seconds = time.perf_counter() - started
    result: dict[str, Any] = {
        "returncode": process.returncode,
        "wall_s": round(seconds, 2),
        "started_at": started_at,
        "peak_rss_mib": round(own_peak, 1),
        "peak_tree_rss_mib": round(tree_peak, 1),
        "command": " ".join(command),
        "log": str(log_file),
    }
    if megapixels is not None:
        result["mpx_s"] = round(megapixels / seconds, 3)
    return result


def completion_times(output: Path, image_ids: Sequence[str]) -> list[float]:
    """When each image's files were complete (its record's modification time), in order;
    images without a record are left out."""
    paths = [record_path(output, image_id) for image_id in image_ids]
    return sorted(path.stat().st_mtime for path in paths if path.is_file())
