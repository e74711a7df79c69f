"""A run killed with SIGKILL resumes from last.ckpt in its own folder (nuclei-train resume=)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from nuclei.runs.run_folder import resume_config

EPOCHS = 4


def train_command(synthetic_root: Path, run_dir: Path, cache: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "nuclei.cli.train",
        "trainer=cpu",
        f"trainer.max_epochs={EPOCHS}",
        "trainer.log_every_n_steps=1",
        "model.base_channels=8",
        "model.depth=3",
        "data.size.image_size=64",
        "data.loader.batch_size=2",
        "data.source.decode_workers=1",
        f"data.source.root={synthetic_root}",
        "task.map_every_n_epochs=2",
        "callbacks.progress_bar=null",
        "callbacks.model_summary=null",
        f"paths.cache_dir={cache}",
        f"hydra.run.dir={run_dir}",
    ]


def run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def kill_after_first_checkpoint(command: list[str], run_dir: Path) -> None:
    """Start training and SIGKILL it as soon as its first last.ckpt is complete."""
    last = run_dir / "checkpoints" / "last.ckpt"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not last.is_file() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # let the writer finish the file
        assert process.poll() is None, "training ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL


def test_killed_run_resumes_to_the_same_metrics(synthetic_root: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    run(train_command(synthetic_root, reference, cache))

    command = train_command(synthetic_root, killed, cache)
    kill_after_first_checkpoint(command, killed)
    assert not (killed / "metrics.json").exists()
    stopped_at = torch.load(killed / "checkpoints" / "last.ckpt", weights_only=False)["epoch"]
    assert stopped_at < EPOCHS - 1
    original_config = (killed / ".hydra" / "config.yaml").read_text()
    # A process killed between logging an epoch and saving its checkpoint leaves that epoch's
    # events behind: write such a leftover, which the resumed run must hide.
    next_validation_step = validation_curve(reference)[stopped_at + 1][0]
    with SummaryWriter(str(killed), filename_suffix=".leftover") as leftover:
        leftover.add_scalar("val/iou", -1.0, global_step=next_validation_step)

    run([sys.executable, "-m", "nuclei.cli.train", f"resume={killed}"])

    expected = json.loads((reference / "metrics.json").read_text())
    resumed = json.loads((killed / "metrics.json").read_text())
    assert resumed["epochs"] == expected["epochs"] == EPOCHS
    for key in set(expected) - {"wall_time_s", "best_checkpoint"}:
        assert resumed[key] == expected[key], key  # exact on the CPU, not approximate
    # The best checkpoint may predate the kill, so compare the final weights too.
    final = [
        torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
        for run_dir in (reference, killed)
    ]
    assert final[0].keys() == final[1].keys()
    for name in final[0]:
        assert torch.equal(final[0][name], final[1][name]), name
    assert Path(resumed["best_checkpoint"]).parent == killed / "checkpoints"
    assert Path(resumed["best_checkpoint"]).name == Path(expected["best_checkpoint"]).name

    # Same folder and config: .hydra is the run's own, the resuming job's files sit beside it.
    assert (killed / ".hydra" / "config.yaml").read_text() == original_config
    assert (killed / ".hydra-resume" / "overrides.yaml").is_file()
    info = json.loads((killed / "run_info.json").read_text())
    assert len(info["resumed"]) == 1
    # TensorBoard goes on in the same folder: every epoch's val/iou is there, once.
    assert len(list(killed.glob("events.out.tfevents.*"))) >= 2  # one file per process
    assert validation_curve(killed) == validation_curve(reference)
    assert len(validation_curve(reference)) == EPOCHS


def validation_curve(run_dir: Path) -> list[tuple[int, float]]:
    """(step, value) of every val/iou event TensorBoard shows for the run."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return [(event.step, event.value) for event in events.Scalars("val/iou")]


def test_resume_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"config\.yaml"):
        resume_config(tmp_path)
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text("paths: {output_dir: x}\n")
    with pytest.raises(FileNotFoundError, match=r"last\.ckpt"):
        resume_config(tmp_path)
