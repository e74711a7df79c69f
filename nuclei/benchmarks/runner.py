"""Every measurement in its own subprocess, then the summary, the table and the JSON record."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nuclei.benchmarks.report import print_table, summarise
from nuclei.benchmarks.settings import Settings
from nuclei.benchmarks.variants import COMPILING_VARIANTS
from nuclei.benchmarks.worker import worker_command


def run_subprocess(
    command: list[str], env: dict[str, str], result: Path, timeout: int
) -> dict[str, Any]:
    """The JSON a worker wrote to ``result``, or ``{"error": ...}`` when it failed."""
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, env=env, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"no result within --worker-timeout {timeout} s"}
    if done.returncode == 0:
        return json.loads(result.read_text())
    return {"error": done.stderr.strip().splitlines()[-1:] or "failed"}


def measure(
    settings: Settings, name: str, warm_cache: bool = False, worker_timeout: int = 1800
) -> dict[str, Any]:
    """Run one measurement in a fresh subprocess (its own peak memory); return its result.

    Compiled measurements start from an empty inductor cache unless ``warm_cache``: the
    compilation time reported is then what a first run pays (later runs of the same
    network and shapes reuse the on-disk cache and start faster).
    """
    with (
        tempfile.NamedTemporaryFile(suffix=".json") as out,
        tempfile.TemporaryDirectory() as cache,
    ):
        env = dict(os.environ)
        if name in COMPILING_VARIANTS and not warm_cache:
            env["TORCHINDUCTOR_CACHE_DIR"] = cache
        command = worker_command(name, Path(out.name), settings)
        started = time.perf_counter()
        result = run_subprocess(command, env, Path(out.name), worker_timeout)
    result["wall_s"] = time.perf_counter() - started
    shown = {k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}
    print(f"  {name:<20} {json.dumps(shown)}", flush=True)
    return result


def run_benchmark(
    settings: Settings,
    variants: Iterable[str],
    warm_cache: bool = False,
    worker_timeout: int = 1800,
    out: Path | None = None,
) -> dict[str, Any]:
    """Run every measurement, each in its own subprocess, print the table; the JSON record."""
    variants = list(variants)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    print(f"Measuring {', '.join(variants)}", flush=True)
    runs = {name: measure(settings, name, warm_cache, worker_timeout) for name in variants}
    summary = summarise(settings, runs, warm_cache=warm_cache, started=started)
    print_table(summary)
    if out is not None:
        out.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"Wrote {out}")
    return summary
