"""One measurement in this process; ``python -m nuclei.benchmarks.worker NAME RESULT SETTINGS``.

The runner starts one such process per measurement (peak memory is per process). Each
measurement imports only what it measures, so that its peak memory holds nothing else.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from nuclei.benchmarks.resources import peak_rss_mb
from nuclei.benchmarks.settings import Settings
from nuclei.benchmarks.variants import LIGHTNING_VARIANTS, VARIANTS, TrainVariant


def measure_here(name: str, settings: Settings) -> dict[str, Any]:
    """The figures of measurement ``name`` (one of :data:`VARIANTS`), run in this process."""
    if name not in VARIANTS:
        raise ValueError(f"unknown measurement {name!r}; known: {', '.join(VARIANTS)}")
    if name == "plain":
        from nuclei.benchmarks.plain_loop import time_plain

        return time_plain(settings)
    if name == "speed_options":
        from nuclei.benchmarks.plain_loop import time_speed_options

        return time_speed_options(settings)
    if name == "lightning_vs_plain" or name in LIGHTNING_VARIANTS:
        from nuclei.benchmarks.train_speed import time_lightning

        variant = LIGHTNING_VARIANTS.get(name, TrainVariant())
        return time_lightning(settings, variant, interleave=name == "lightning_vs_plain")
    if name == "loader":
        from nuclei.benchmarks.loader_speed import time_loader

        return time_loader(settings)
    from nuclei.benchmarks.predict_speed import time_predict, time_predict_pair

    if name == "predict_eager_vs_compiled":
        return time_predict_pair(settings)
    return time_predict(settings, compiled=name == "predict_compiled")


def run_worker(name: str, settings: Settings) -> dict[str, Any]:
    """Run measurement ``name`` in this process; its figures and the process's peak memory."""
    torch.backends.cudnn.benchmark = True
    result = measure_here(name, settings)
    result["peak_rss_mb"] = peak_rss_mb()
    if torch.cuda.is_available() and settings.device.startswith("cuda"):
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def write_result(name: str, settings: Settings, path: Path) -> None:
    """Run measurement ``name`` and write its result to ``path`` as JSON."""
    path.write_text(json.dumps(run_worker(name, settings)))


def worker_command(name: str, path: Path, settings: Settings) -> list[str]:
    """The command line of a process that runs measurement ``name`` into ``path``."""
    encoded = json.dumps(asdict(settings))
    return [sys.executable, "-m", "nuclei.benchmarks.worker", name, str(path), encoded]


def main(argv: list[str] | None = None) -> None:
    """Entry point of :func:`worker_command`'s processes."""
    name, path, encoded = sys.argv[1:] if argv is None else argv
    write_result(name, Settings(**json.loads(encoded)), Path(path))


if __name__ == "__main__":
    main()
