"""scripts/benchmark.py still runs: its command line, and the workers of benchmarks/ on a
tiny network, in this process."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch

from benchmarks.common import DEFAULT_VARIANTS, LIGHTNING_VARIANTS, VARIANTS, Settings
from benchmarks.runner import run_worker, summarise

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "benchmark.py"


@pytest.fixture(scope="module")
def benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nuclei_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TINY = ["--base", "4", "--depth", "2", "--size", "32", "--batch", "2", "--steps", "2"]
TINY += ["--warmup", "1", "--chunk", "1", "--repeats", "3"]
TINY += ["--predict-size", "64", "--tile", "32", "--overlap", "8", "--predict-repeats", "1"]


def worker(benchmark: ModuleType, name: str) -> dict:
    """Parse the tiny command line with ``--worker name`` and run that worker here."""
    settings, args = benchmark.parse_args([*TINY, "--worker", name])
    return run_worker(args.worker, settings)


@pytest.mark.parametrize("name", ["plain", "lightning", "lightning_channels_last"])
def test_train_workers_report_images_per_second_and_memory(benchmark, name: str) -> None:
    result = worker(benchmark, name)
    assert result["img_s"] > 0 and result["first_step_s"] > 0
    assert result["peak_rss_mb"] > 50


def test_interleaved_worker_times_both_paths_chunk_by_chunk(benchmark) -> None:
    result = worker(benchmark, "lightning_vs_plain")
    assert len(result["chunk_ratios"]) == 3
    assert result["img_s"] > 0 and result["plain_img_s"] > 0
    assert min(result["chunk_ratios"]) <= result["ratio"] <= max(result["chunk_ratios"])


def test_predict_worker_reports_megapixels_per_second(benchmark) -> None:
    assert worker(benchmark, "predict_eager")["mpx_s"] > 0


def test_summary_holds_the_required_keys_and_ratios(benchmark) -> None:
    settings, _ = benchmark.parse_args(TINY)
    runs = {
        "lightning_vs_plain": {"img_s": 9.0, "plain_img_s": 10.0, "ratio": 0.9, "peak_rss_mb": 3},
        "lightning": {"img_s": 8.0, "first_step_s": 1.0, "peak_rss_mb": 2.0},
        "lightning_compiled": {"img_s": 12.0, "first_step_s": 30.0, "peak_rss_mb": 4.0},
        "loader": {"img_s": 300.0, "peak_rss_mb": 5.0},
    }
    summary = summarise(settings, runs, warm_cache=False, started="now")
    required = {"train_img_s_lightning", "train_img_s_plain", "train_ratio", "loader_img_s"}
    required |= {"loader_ratio", "train_img_s_compiled", "predict_mpx_s_eager", "peak_rss_mb"}
    assert required | {"predict_mpx_s_compiled", "settings"} <= set(summary)
    assert summary["train_ratio"] == 0.9 and summary["train_img_s_plain"] == 10.0
    assert summary["loader_ratio"] == pytest.approx(300 / 9, abs=0.1)
    assert summary["compiled_speedup"] == 1.5  # over Lightning alone (no interleaved run)
    assert summary["peak_rss_mb"]["loader"] == 5.0
    assert summary["predict_mpx_s_eager"] is None and summary["settings"]["batch"] == 2


def test_summary_falls_back_on_the_interleaved_measurements(benchmark) -> None:
    settings, _ = benchmark.parse_args(TINY)
    runs = {
        "speed_options": {"compiled_img_s": 11.0, "compiled_speedup": 1.3},
        "predict_eager_vs_compiled": {"eager_mpx_s": 0.5, "compiled_mpx_s": 0.9, "speedup": 1.8},
    }
    summary = summarise(settings, runs, warm_cache=False, started="now")
    assert summary["train_img_s_compiled"] == 11.0 and summary["compiled_speedup"] == 1.3
    assert summary["predict_mpx_s_eager"] == 0.5 and summary["predict_mpx_s_compiled"] == 0.9
    assert summary["predict_compile_speedup"] == 1.8


def test_speed_options_worker_compares_every_option_with_eager(benchmark, monkeypatch) -> None:
    # Compilation is slow on a CPU and covered by test_speed_options.py: stub it out here.
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **_: None)
    result = worker(benchmark, "speed_options")
    for name in ("eager", "channels_last", "compiled", "compiled_channels_last"):
        assert result[f"{name}_img_s"] > 0
    assert result["eager_speedup"] == 1.0


def test_command_line_keeps_its_flags_and_defaults(benchmark) -> None:
    settings, args = benchmark.parse_args([])
    assert settings == Settings()
    assert args.variants == list(DEFAULT_VARIANTS) and args.worker_timeout == 1800
    assert "lightning_compiled_channels_last" not in args.variants
    assert set(LIGHTNING_VARIANTS) <= set(VARIANTS) and len(set(VARIANTS)) == len(VARIANTS)
    with pytest.raises(SystemExit):
        benchmark.parse_args(["--chunk", "0"])
