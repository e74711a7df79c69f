"""The JSON record of a benchmark (settings, headline figures, ratios) and its table."""

from __future__ import annotations

import platform
from dataclasses import asdict
from typing import Any

import torch

from nuclei.benchmarks.settings import Settings

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
