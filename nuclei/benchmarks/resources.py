"""Wall-clock and memory readings of this process."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from typing import Any

import torch


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall-clock times are the work's."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds(call: Callable[[], Any], device: torch.device) -> float:
    """Wall-clock seconds of ``call()``, queued GPU work included."""
    started = time.perf_counter()
    call()
    synchronize(device)
    return time.perf_counter() - started
