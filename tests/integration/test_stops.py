"""Stopping a command: no process outlives nuclei-predict, even SIGKILLed; SIGTERM stops
nuclei-predict and nuclei-train as Ctrl-C does (exit status 143, every image or checkpoint
written whole, a rerun or ``resume=`` continues).

Each run is the real command in a subprocess with the helpers a prediction starts: one
DataLoader worker (forked), two postprocessing workers (spawned) and multiprocessing's
resource tracker. Its processes are read from ``/proc`` (``support.processes``).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from support.processes import Process, descendants, kill, wait_until_gone
from support.training import FAST_TRAIN_OVERRIDES, SMALL_UNET_OVERRIDES

from nuclei.data.sources.io import read_image

#: Exit status of a command stopped by SIGTERM (128 + 15, as a shell reports it).
STOPPED_BY_SIGTERM = 128 + signal.SIGTERM
IMAGES = 48
TABLES = {"nuclei.csv", "summary.csv", "submission.csv", "predict_args.json"}
HELPERS = ["decode_workers=1", "postprocess_workers=2", "batch_size=1"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, synthetic_root: Path) -> Path:
    """48 images: the synthetic set's 12, four times, each time turned by 90 degrees."""
    out = tmp_path_factory.mktemp("stops")
    sources = sorted(synthetic_root.glob("*/images/*.png"))
    for i in range(IMAGES):
        image = np.rot90(read_image(sources[i % len(sources)]), k=i // len(sources))
        Image.fromarray(np.ascontiguousarray(image)).save(out / f"image{i:02d}.png")
    return out


def checkpoint_of(run_dir: Path) -> Path:
    return Path(json.loads((run_dir / "metrics.json").read_text())["best_checkpoint"])


def predict_command(ckpt: Path, source: Path, out: Path, *overrides: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "nuclei.cli.predict",
        f"ckpt_path={ckpt}",
        f"input={source}",
        f"output={out}",
        "device=cpu",
        "progress_bar=false",
        f"hydra.run.dir={out.parent / (out.name + '_hydra')}",
        *overrides,
    ]


@pytest.fixture
def started() -> Iterator[Callable[..., subprocess.Popen]]:
    """Starts commands in their own session, logging to ``<log>``; kills what is left after."""
    runs: list[subprocess.Popen] = []

    def start(command: list[str], log: Path) -> subprocess.Popen:
        with log.open("w") as handle:
            process = subprocess.Popen(
                command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
            )
        runs.append(process)
        return process

    yield start
    for process in runs:
        if process.poll() is None:
            process.kill()
        process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # anything left in its session


def images_done(out: Path) -> set[str]:
    """Images with at least one file in ``out``."""
    return {p.name.rsplit("_", 1)[0] for p in out.glob("image*_*")}


def helpers_of(process: subprocess.Popen, out: Path, least_done: int) -> list[Process]:
    """Wait until ``process`` runs its helpers and has written ``least_done`` images; the
    processes below it."""
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        below = descendants(process.pid)
        kinds = [kind_of(p, process.pid) for p in below]
        helpers = kinds.count("postprocessing") >= 2 and {"decoding", "tracker"} <= set(kinds)
        if helpers and len(images_done(out)) >= least_done:
            return below
        time.sleep(0.05)
    raise AssertionError(f"the run ended or did not start its helpers (status {process.poll()})")


def kind_of(child: Process, parent: int) -> str:
    """What a helper of nuclei-predict is, from its command line."""
    if "resource_tracker" in child.command:
        return "tracker"
    if "spawn_main" in child.command:
        return "postprocessing"
    own = Path(f"/proc/{parent}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    return "decoding" if child.command == own else child.command


def test_no_process_outlives_a_killed_prediction(
    tmp_path: Path, trained_run: Path, folder: Path, started: Callable[..., subprocess.Popen]
) -> None:
    out = tmp_path / "out"
    command = predict_command(checkpoint_of(trained_run), folder, out, *HELPERS)
    process = started(command, tmp_path / "predict.log")
    below = helpers_of(process, out, least_done=1)
    assert process.poll() is None, "the prediction ended before it could be killed"

    os.kill(process.pid, signal.SIGKILL)  # the command alone, as the OOM killer does
    process.wait()
    try:
        alive = wait_until_gone(below, seconds=10)
        assert alive == [], f"alive 10 s after the command was killed: {alive}"
    finally:
        kill(below)


def stop_prediction(
    command: list[str], out: Path, started: Callable[..., subprocess.Popen], group: bool
) -> None:
    """Start ``command`` (into ``out``), SIGTERM it (``group``: every process of it) once two
    images are written, and check that it stops with status 143 and leaves no process."""
    log = out.parent / "predict.log"
    process = started(command, log)
    below = helpers_of(process, out, least_done=2)
    if group:
        os.killpg(process.pid, signal.SIGTERM)  # as systemd and SLURM do
    else:
        os.kill(process.pid, signal.SIGTERM)  # the command alone, as timeout and docker do
    status = process.wait(timeout=120)
    text = log.read_text()
    assert status == STOPPED_BY_SIGTERM, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert text.rstrip().endswith("nuclei-predict: stopped by SIGTERM")
    assert wait_until_gone(below, seconds=10) == []


def rerun(command: list[str], out: Path) -> None:
    """Run ``command`` again to the end; every image in ``out`` is then complete."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    check_complete(out)
    assert not [p for p in out.rglob("*") if "partial" in p.name]


@pytest.mark.slow
def test_sigterm_stops_a_prediction_that_a_rerun_continues(
    tmp_path: Path, trained_run: Path, folder: Path, started: Callable[..., subprocess.Popen]
) -> None:
    out = tmp_path / "out"
    command = predict_command(checkpoint_of(trained_run), folder, out, *HELPERS)
    stop_prediction(command, out, started, group=False)
    assert 2 <= len(images_done(out)) < IMAGES, "the run was not stopped halfway"
    assert not [p for p in out.rglob("*") if "partial" in p.name or p.suffix == ".tmp"]
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("image*_*")}

    rerun(command, out)
    # Every image the stopped run had begun was complete: none is written again.
    after = {name: (out / name).stat() for name in before}
    assert {n: (s.st_ino, s.st_mtime_ns) for n, s in after.items()} == before


@pytest.mark.slow
def test_sigterm_to_its_process_group_stops_a_prediction_as_cleanly(
    tmp_path: Path, trained_run: Path, folder: Path, started: Callable[..., subprocess.Popen]
) -> None:
    """The helpers get the signal too: the DataLoader's worker leaves the stop to its
    parent (no "worker killed" error); the postprocessing workers end at once, and the
    images they held are redone by the rerun."""
    out = tmp_path / "out"
    command = predict_command(checkpoint_of(trained_run), folder, out, *HELPERS)
    stop_prediction(command, out, started, group=True)
    assert len(images_done(out)) < IMAGES, "the run was not stopped halfway"
    rerun(command, out)


def check_complete(out: Path) -> None:
    """Every image's files and rows are there and agree with its label image."""
    names = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    ids = [f"image{i:02d}" for i in range(IMAGES)]
    suffixes = ("_mask.png", "_labels.tif", "_overlay.png")
    assert names == TABLES | {i + s for i in ids for s in suffixes}
    with (out / "summary.csv").open(newline="") as handle:
        summary = {row["image"]: int(row["nuclei"]) for row in csv.DictReader(handle)}
    with (out / "nuclei.csv").open(newline="") as handle:
        rows = [row["image"] for row in csv.DictReader(handle)]
    assert sorted(summary) == ids
    for image_id in ids:
        labels = tifffile.imread(out / f"{image_id}_labels.tif")
        count = len(np.unique(labels[labels > 0]))
        assert summary[image_id] == rows.count(image_id) == count, image_id
        mask = np.asarray(Image.open(out / f"{image_id}_mask.png"))
        np.testing.assert_array_equal(mask == 255, labels > 0)


def train_command(data_root: Path, run_dir: Path, cache: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "nuclei.cli.train",
        *FAST_TRAIN_OVERRIDES,
        *SMALL_UNET_OVERRIDES,
        "trainer.max_epochs=3",
        "data.loader.batch_size=2",
        "data.loader.num_workers=1",
        "task.map_every_n_epochs=0",
        f"data.source.root={data_root}",
        f"paths.cache_dir={cache}",
        f"hydra.run.dir={run_dir}",
    ]


@pytest.mark.slow
def test_sigterm_stops_training_and_resume_finishes_it(
    tmp_path: Path, synthetic_root: Path, started: Callable[..., subprocess.Popen]
) -> None:
    run_dir = tmp_path / "run"
    command = train_command(synthetic_root, run_dir, tmp_path / "cache")
    process = started(command, tmp_path / "train.log")
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not last.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "training ended before it could be stopped"
    below = descendants(process.pid)
    assert below, "no DataLoader worker to stop"

    os.killpg(process.pid, signal.SIGTERM)  # every process of it, as SLURM does
    status = process.wait(timeout=120)
    log = (tmp_path / "train.log").read_text()
    assert status == STOPPED_BY_SIGTERM, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert log.rstrip().endswith("nuclei-train: stopped by SIGTERM")
    assert wait_until_gone(below, seconds=10) == []
    assert (run_dir / "checkpoints" / "on_exception.ckpt").is_file()
    assert not (run_dir / "metrics.json").exists()

    resumed = subprocess.run(
        [sys.executable, "-m", "nuclei.cli.train", f"resume={run_dir}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] == 3
