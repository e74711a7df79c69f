"""scripts/benchmark_predict.py and its pieces, on tiny images and networks (no timings
are asserted, only that every figure is there and sound)."""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from benchmarks import memory
from benchmarks.common import random_unet
from benchmarks.memory import PeakMemory, peak_rss_of, rss_mib, tree_rss_mib
from benchmarks.predict import (
    benchmark_images,
    cpu_bound_ratio,
    time_network,
    time_postprocess,
    write_folder,
)
from nuclei.inference.output_folder import failure_path, record_path
from nuclei.runs.checkpoint import load_run, restore_task

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "benchmark_predict", ROOT / "scripts" / "benchmark_predict.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_images_are_synthetic_nuclei_crops_and_mosaics(tmp_path: Path) -> None:
    small = benchmark_images(3, 64, rendered=1)
    assert [i.shape for i in small] == [(64, 64, 3)] * 3 and small[0].dtype == np.uint8
    assert not np.array_equal(small[0], small[1])  # flips and rotations of one field
    [mosaic] = benchmark_images(1, 1100, rendered=1)
    assert mosaic.shape == (1100, 1100, 3) and mosaic.std() > 1
    written = sorted(write_folder(small, tmp_path / "in").glob("*.png"))
    assert [p.name for p in written] == ["image_000.png", "image_001.png", "image_002.png"]


def test_the_benchmarked_unet_is_the_default_recipes() -> None:
    recipe = OmegaConf.load(ROOT / "conf" / "model" / "unet.yaml")
    net = random_unet()
    unet = net.net
    assert unet.depth == recipe.depth and unet.encoder[0][0].out_channels == recipe.base_channels
    assert isinstance(unet.decoder[0].up, nn.ConvTranspose2d) and recipe.upsampling == "transposed"
    assert unet.head.out_channels == 1 and not net.training


def test_network_and_postprocessing_figures_on_tiny_images() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 3, padding=1))
    images = benchmark_images(3, 48, rendered=1)
    figures, maps = time_network(net.eval(), images, torch.device("cpu"), batch_size=2)
    assert figures["images"] == 3 and figures["plan"]["windows"] == 1
    assert figures["network_s_per_image"] > 0 and figures["whole_s_per_image"] > 0
    assert figures["max_abs_difference"] < 1e-5  # planned windows = whole-image forward
    assert figures["network_peak_rss_mib"] > 50 and len(maps) == 3
    disk = np.zeros((1, 40, 40), np.float32)
    disk[0, 5:15, 5:15] = disk[0, 25:35, 20:30] = 0.9
    post = time_postprocess([disk, disk])
    assert post["instances_per_image"] == 2 and post["postprocess_mpx_s"] > 0


def test_the_cpu_bound_is_the_network_time_over_all_cpu_work_shared_by_the_cores() -> None:
    figures = {
        "network_s_per_image": 2.0,
        "network_cpu_s_per_image": 3.6,
        "decode_cpu_s_per_image": 0.1,
        "finish_cpu_s_per_image": 0.3,
    }
    assert cpu_bound_ratio(figures, cores=2) == 1.0  # 4 CPU-s on 2 cores: the network's 2 s
    assert cpu_bound_ratio({**figures, "finish_cpu_s_per_image": 0.7}, cores=2) == 0.9091
    assert cpu_bound_ratio({**figures, "network_s_per_image": 1.8}, cores=2) == 0.9


def test_peak_memory_sees_an_allocation_inside_its_block() -> None:
    with PeakMemory() as peak:
        start = peak.rss_mib
        block = np.ones(25_000_000)  # 200 MB
        time.sleep(0.05)
        del block
    assert peak.rss_mib - start > 150
    here = rss_mib()
    assert 0.9 * here <= tree_rss_mib(os.getpid()) and 0.9 * here <= peak_rss_of(os.getpid())


def test_nuclei_predict_runs_as_a_command_with_its_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "nuclei-predict"
    fake.write_text('#!/bin/sh\necho "$@"\nsleep 0.3\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(memory, "predict_executable", lambda: fake)
    result = memory.run_predict(
        tmp_path / "a.ckpt", tmp_path, tmp_path / "out", "cpu", ["tile=1024"], megapixels=2.0
    )
    assert result["returncode"] == 0 and result["mpx_s"] > 0
    assert 0 <= time.time() - result["started_at"] < 60
    assert 0 < result["peak_rss_mib"] <= result["peak_tree_rss_mib"] < 100  # the shell's own
    logged = Path(result["log"]).read_text()
    assert f"ckpt_path={tmp_path / 'a.ckpt'}" in logged and "device=cpu" in logged
    assert "tile=1024" in logged


def test_the_script_measures_a_tiny_folder_end_to_end(script: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    work = tmp_path / "work"
    tiny = ["--count", "2", "--size", "64", "--large-size", "96", "--skip-predict"]
    script.main([*tiny, "--workdir", str(work), "--out", str(out)])
    figures = json.loads(out.read_text())
    for key in ("folder", "large"):
        assert figures[key]["max_abs_difference"] < 1e-4 and figures[key]["network_mpx_s"] > 0
        assert figures[key]["postprocess_mpx_s"] > 0 and figures[key]["plan"]["windows"] == 1
    folder = figures["folder"]
    assert folder["network_cpu_s_per_image"] > 0 and folder["decode_cpu_s_per_image"] > 0
    assert folder["finish_cpu_s_per_image"] > 0 and 0 < folder["cpu_bound_vs_network"] <= 1
    finished = sorted(p.name for p in (work / "finished").iterdir())
    assert "image_000_overlay.png" in finished and "image_001_labels.tif" in finished
    assert "cpu_bound_vs_network" not in figures["large"]  # no file of it to decode
    run = load_run(work / "run" / "checkpoints" / "random.ckpt")  # loads as nuclei-predict does
    assert run.config.data.size.mode == "crop"
    task = restore_task(run)
    reference = random_unet().state_dict()
    assert {k: v.shape for k, v in task.net.state_dict().items()} == {
        k: v.shape for k, v in reference.items()
    }
    assert script.predict_overrides(figures["folder"]["plan"], script.parse_args([])) == [
        "batch_size=8",
        "size_mode=crop",
        "tile=64",
        "overlap=0",
    ]
    assert "network" in script.report(figures)


def test_completion_times_are_the_records_times_in_order(tmp_path: Path) -> None:
    for image_id, when in (("b", 200.0), ("a", 100.0), ("c", 150.0)):
        record_path(tmp_path, image_id).parent.mkdir(parents=True, exist_ok=True)
        record_path(tmp_path, image_id).write_text("{}")
        os.utime(record_path(tmp_path, image_id), (when, when))
    failure_path(tmp_path, "d").parent.mkdir(parents=True)
    failure_path(tmp_path, "d").write_text("{}")  # a failure is no completion
    times = memory.completion_times(tmp_path, ["a", "b", "c", "d"])
    assert times == [100.0, 150.0, 200.0]


def test_nuclei_predict_is_compared_with_the_network_timed_just_before_and_after_it(
    script: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    network = iter([1.0, 3.0])  # Mpx/s before and after: the machine sped up meanwhile

    def network_around(*arguments: object) -> float:
        calls.append("network")
        return next(network)

    def run_predict(ckpt: Path, folder: Path, output: Path, *rest: object) -> dict:
        calls.append("nuclei-predict")
        record_path(output, "a").parent.mkdir(parents=True)
        for second, name in enumerate(["a", "b", "c"]):  # done at 101, 102, 103 s
            record_path(output, name).write_text("{}")
            os.utime(record_path(output, name), (101 + second, 101 + second))
        return {"wall_s": 4.0, "started_at": 100.0, "mpx_s": 0.75}

    monkeypatch.setattr(script, "network_around", network_around)
    monkeypatch.setattr(script, "run_predict", run_predict)
    folder = tmp_path / "images"
    folder.mkdir()
    for name in "abc":
        (folder / f"{name}.png").touch()
    args = script.parse_args(["--count", "3", "--size", "1000"])  # 3 Mpx in all
    folder_figures = {"plan": {"tile": [1000, 1000], "overlap": 0}, "postprocess_mpx_s": 1.5}
    whole = script.predict_figures(
        tmp_path / "a.ckpt", folder, tmp_path, folder_figures, args, (None, [], None)
    )
    assert calls == ["network", "nuclei-predict", "network"]
    assert whole["network_mpx_s_before_after"] == [1.0, 3.0]
    assert whole["first_image_done_s"] == 1.0 and whole["first_to_last_image_s"] == 2.0
    assert whole["steady_mpx_s"] == pytest.approx(1.0)  # 2 of the 3 Mpx in 2 s
    assert whole["mpx_s_vs_network"] == pytest.approx(0.375)  # against the mean, 2 Mpx/s
    assert whole["steady_mpx_s_vs_network"] == pytest.approx(0.5)
    assert whole["steady_mpx_s_vs_min_network_postprocess"] == pytest.approx(1.0 / 1.5, 1e-3)


def test_the_network_is_timed_alone_on_a_few_images(script: ModuleType) -> None:
    images = benchmark_images(2, 64)
    args = script.parse_args(["--batch-size", "2"])
    assert script.network_around(random_unet(), images, torch.device("cpu"), args) > 0
