"""Helper process counts follow the cores this process may use, not the machine's count."""

import os
import subprocess
import sys

import pytest

from nuclei import runtime
from nuclei.runtime import available_cores, default_decode_workers, default_postprocess_workers


@pytest.mark.parametrize(
    ("allowed", "postprocess", "decode"), [(1, 1, 1), (2, 2, 1), (6, 4, 1), (16, 4, 4), (64, 4, 4)]
)
def test_worker_counts_from_the_allowed_cores(
    monkeypatch: pytest.MonkeyPatch, allowed: int, postprocess: int, decode: int
) -> None:
    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: set(range(allowed)))
    monkeypatch.setattr(runtime.os, "cpu_count", lambda: 128)  # the whole node: not used
    assert available_cores() == allowed
    assert (default_postprocess_workers(), default_decode_workers()) == (postprocess, decode)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux's")
def test_a_process_pinned_to_one_core_starts_one_postprocessing_worker() -> None:
    code = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
        "from nuclei.runtime import available_cores, default_postprocess_workers; "
        "print(available_cores(), default_postprocess_workers(), os.cpu_count())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    allowed, workers, machine = map(int, out.stdout.split())
    assert (allowed, workers) == (1, 1) and machine >= 1
