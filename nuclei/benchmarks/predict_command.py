"""The whole ``nuclei-predict`` on a folder, timed from outside: wall clock and peak memory.

The command runs in its own process, as a user runs it (process start, checkpoint loading,
decoding, network, postprocessing, writing every file). Its memory is sampled from ``/proc``
while it runs: its own peak resident set size (``VmHWM``; ``wait4``'s ``ru_maxrss`` would
report this process's peak, inherited through ``vfork`` and ``exec``) and the peak of the sum
over it and its worker processes. :func:`completion_times` reads when each image was done
from the records the command writes, for its throughput once it is running.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nuclei.benchmarks.memory_sampler import peak_rss_of, tree_rss_mib
from nuclei.inference.image_records import record_path

SAMPLE_S = 0.1  # seconds between memory samples


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
