"""Checkpoint layouts: a new checkpoint rebuilds through Lightning alone, and one in the
layout of nuclei 0.1 is refused in one line naming the file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nuclei.runs.checkpoint import CheckpointError, load_run, restore_task
from nuclei.training.task import SegmentationTask

EVAL = Path(sys.executable).parent / "nuclei-eval"


def old_layout_checkpoint(path: Path) -> Path:
    """A checkpoint whose stored configuration has the layout of nuclei 0.1: flat data keys,
    the task built from top-level model/optimizer sections, old module paths."""
    config = {
        "data": {"_target_": "nuclei.data.datamodule.NucleiDataModule", "image_size": 32},
        "model": {"_target_": "nuclei.models.unet.build_unet", "base_channels": 4},
        "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 0.002},
        "task": {"_target_": "nuclei.task.SegmentationTask", "pos_weight": None},
    }
    torch.save({"state_dict": {}, "nuclei_config": config}, path)
    return path


def test_a_0_1_checkpoint_is_refused_naming_the_file(tmp_path: Path) -> None:
    checkpoint = old_layout_checkpoint(tmp_path / "old.ckpt")
    with pytest.raises(CheckpointError, match=r"old\.ckpt: .*no 'task\.net'.*nuclei 0\.1"):
        load_run(checkpoint)
    with pytest.raises(CheckpointError, match=r"old\.ckpt: .*no 'task\.net'"):
        load_run(checkpoint, trust=True)  # trusting the file does not make it readable
    done = subprocess.run(
        [str(EVAL), f"ckpt_path={checkpoint}", "progress_bar=false"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"nuclei-eval: {checkpoint}: its stored configuration has no")


def test_a_new_checkpoint_rebuilds_with_lightning_alone(trained_run: Path) -> None:
    best = Path(json.loads((trained_run / "metrics.json").read_text())["best_checkpoint"])
    task = SegmentationTask.load_from_checkpoint(best, map_location="cpu").eval()
    restored = restore_task(load_run(best))
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(task(image), restored(image))
    assert task.hparams.net["base_channels"] == 8  # the network's config travels
