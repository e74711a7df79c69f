"""Every measurement of the training benchmark in its own subprocess, then the summary, the
table and the JSON record; ``python -m benchmarks.runner NAME RESULT SETTINGS`` is one such
process (peak memory is per process).

Each measurement imports only what it measures, so that its peak memory holds nothing else.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import (
    COMPILING_VARIANTS,
    LIGHTNING_VARIANTS,
    VARIANTS,
    Settings,
    TrainVariant,
    peak_rss_mb,
)

#: The repository root, which holds ``benchmarks/``: on the path of every measurement's process.
ROOT = Path(__file__).resolve().parents[1]

Runs = dict[str, dict[str, Any]]

#: The table's rows: label, summary key (rows without a figure are not printed).
ROWS: tuple[tuple[str, str], ...] = (
    ("train img/s, plain PyTorch loop", "train_img_s_plain"),
    ("train img/s, Lightning (nuclei-train path)", "train_img_s_lightning"),
    ("  Lightning / plain (median of chunk pairs)", "train_ratio"),
    ("train img/s, plain loop alone", "train_img_s_plain_alone"),
    ("train img/s, Lightning alone", "train_img_s_lightning_alone"),
    ("train img/s, {compiled_from} + speed.compile", "train_img_s_compiled"),
    ("  first step with compile (s)", "compile_first_step_s"),
    ("  first step eager (s)", "eager_first_step_s"),
    ("train img/s, Lightning + speed.channels_last", "train_img_s_channels_last"),
    ("train img/s, Lightning + compile + channels_last", "train_img_s_compiled_channels_last"),
    ("train img/s, Lightning + bf16-mixed", "train_img_s_bf16"),
    ("train step speed-up over eager: compile", "compiled_speedup"),
    ("  channels_last", "channels_last_speedup"),
    ("  compile + channels_last", "compiled_channels_last_speedup"),
    ("  bf16-mixed (across processes)", "bf16_speedup"),
    ("data loader img/s (NucleiDataModule)", "loader_img_s"),
    ("  loader / Lightning train", "loader_ratio"),
    ("predict Mpx/s, eager", "predict_mpx_s_eager"),
    ("predict Mpx/s, compiled", "predict_mpx_s_compiled"),
    ("  speed-up", "predict_compile_speedup"),
    ("  first compiled predict call (s)", "predict_compile_first_call_s"),
)

#: Who ran the compiled training figure (``train_img_s_compiled_from``), as the table says it.
COMPILED_FROM = {"lightning_compiled": "Lightning", "speed_options": "plain loop"}


def measure_here(name: str, settings: Settings) -> dict[str, Any]:
    """The figures of measurement ``name`` (one of :data:`VARIANTS`), run in this process."""
    if name not in VARIANTS:
        raise ValueError(f"unknown measurement {name!r}; known: {', '.join(VARIANTS)}")
    if name in ("lightning_vs_plain", "loader") or name in LIGHTNING_VARIANTS:
        from benchmarks.train import time_lightning, time_loader

        if name == "loader":
            return time_loader(settings)
        variant = LIGHTNING_VARIANTS.get(name, TrainVariant())
        return time_lightning(settings, variant, interleave=name == "lightning_vs_plain")
    from benchmarks.plain import time_plain, time_predict, time_predict_pair, time_speed_options

    if name == "plain":
        return time_plain(settings)
    if name == "speed_options":
        return time_speed_options(settings)
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
    return [sys.executable, "-m", "benchmarks.runner", name, str(path), encoded]


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
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
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


def figure(runs: Runs, name: str, key: str) -> float | None:
    """Measurement ``name``'s figure ``key``, rounded to 3 decimals; None if not measured."""
    value = runs.get(name, {}).get(key)
    return None if value is None else round(value, 3)


def ratio(top: float | None, bottom: float | None, digits: int = 3) -> float | None:
    """``top / bottom`` rounded, or None when either is missing (or zero)."""
    return round(top / bottom, digits) if top and bottom else None


def settings_record(settings: Settings, warm_cache: bool, started: str) -> dict[str, Any]:
    """The settings, the inductor cache choice, and the machine the figures come from."""
    return asdict(settings) | {
        "warm_cache": warm_cache,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "started": started,
    }


def headline_figures(runs: Runs) -> dict[str, Any]:
    """The measured figures, each from the measurement that is its best source."""
    compiled = figure(runs, "lightning_compiled", "img_s")
    return {
        # Headline: Lightning and plain interleaved in one process (lightning_vs_plain).
        "train_img_s_lightning": figure(runs, "lightning_vs_plain", "img_s"),
        "train_img_s_plain": figure(runs, "lightning_vs_plain", "plain_img_s"),
        "train_ratio": figure(runs, "lightning_vs_plain", "ratio"),
        # Each alone in its own process (their peak memory, and a cross-check).
        "train_img_s_lightning_alone": figure(runs, "lightning", "img_s"),
        "train_img_s_plain_alone": figure(runs, "plain", "img_s"),
        # Lightning + speed.compile where measured, else the compiled plain loop of
        # speed_options (compile changes only the network, so both gain alike).
        "train_img_s_compiled": compiled or figure(runs, "speed_options", "compiled_img_s"),
        "train_img_s_channels_last": figure(runs, "lightning_channels_last", "img_s"),
        "train_img_s_bf16": figure(runs, "lightning_bf16", "img_s"),
        "compile_first_step_s": figure(runs, "lightning_compiled", "first_step_s"),
        "eager_first_step_s": figure(runs, "lightning", "first_step_s"),
        "loader_img_s": figure(runs, "loader", "img_s"),
        # Each alone where measured, else from the interleaved pair.
        "predict_mpx_s_eager": figure(runs, "predict_eager", "mpx_s")
        or figure(runs, "predict_eager_vs_compiled", "eager_mpx_s"),
        "predict_mpx_s_compiled": figure(runs, "predict_compiled", "mpx_s")
        or figure(runs, "predict_eager_vs_compiled", "compiled_mpx_s"),
        "predict_compile_first_call_s": figure(runs, "predict_compiled", "first_call_s"),
        "peak_rss_mb": {
            name: round(run["peak_rss_mb"], 1) for name, run in runs.items() if "peak_rss_mb" in run
        },
        "train_img_s_compiled_channels_last": figure(
            runs, "lightning_compiled_channels_last", "img_s"
        ),
        "train_img_s_compiled_from": "lightning_compiled" if compiled else "speed_options",
    }


def speedups(figures: dict[str, Any], runs: Runs) -> dict[str, Any]:
    """Loader and speed-up ratios: interleaved measurements where run, else across processes."""
    reference = figures["train_img_s_lightning_alone"] or figures["train_img_s_lightning"]
    ratios = {
        "loader_ratio": ratio(figures["loader_img_s"], figures["train_img_s_lightning"], 1),
    }
    for option in ("compiled", "channels_last", "compiled_channels_last"):
        ratios[f"{option}_speedup"] = figure(runs, "speed_options", f"{option}_speedup") or ratio(
            figures[f"train_img_s_{option}"], reference
        )
    ratios["bf16_speedup"] = ratio(figures["train_img_s_bf16"], reference)
    ratios["predict_compile_speedup"] = figure(
        runs, "predict_eager_vs_compiled", "speedup"
    ) or ratio(figures["predict_mpx_s_compiled"], figures["predict_mpx_s_eager"])
    return ratios


def summarise(settings: Settings, runs: Runs, warm_cache: bool, started: str) -> dict[str, Any]:
    """The JSON record: settings, headline figures, ratios, and every measurement."""
    figures = headline_figures(runs)
    return {
        "settings": settings_record(settings, warm_cache, started),
        **figures,
        **speedups(figures, runs),
        "runs": runs,
    }


def print_table(summary: dict[str, Any]) -> None:
    """The headline figures, one per line; then peak memory and any failed measurement."""
    settings = summary["settings"]
    print(
        f"\nU-Net base {settings['base']} depth {settings['depth']}, {settings['size']}x"
        f"{settings['size']}, batch {settings['batch']}, {settings['device']}, "
        f"{settings['threads']} threads, torch {settings['torch']}; {settings['warmup']} warm-up "
        f"steps, then {settings['repeats']} x {settings['chunk']} interleaved steps each "
        f"(Lightning vs plain) or {settings['steps']} timed steps (alone)"
    )
    compiled_from = COMPILED_FROM[summary.get("train_img_s_compiled_from", "lightning_compiled")]
    for label, key in ROWS:
        if summary.get(key) is not None:
            print(f"{label.format(compiled_from=compiled_from):<50} {summary[key]:>10}")
    print("peak RSS (MiB): " + ", ".join(f"{k} {v}" for k, v in summary["peak_rss_mb"].items()))
    for name, run in summary["runs"].items():
        if "error" in run:
            print(f"{name}: FAILED: {run['error']}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of :func:`worker_command`'s processes."""
    name, path, encoded = sys.argv[1:] if argv is None else argv
    write_result(name, Settings(**json.loads(encoded)), Path(path))


if __name__ == "__main__":
    main()
