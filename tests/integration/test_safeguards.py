"""A failing run loses nothing: non-finite loss stops it cleanly, files are written whole."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from omegaconf import open_dict

from nuclei.cli.train import train
from nuclei.files import atomic_write_text
from nuclei.runs.run_folder import RunFolderError
from nuclei.training.callbacks import NonFiniteLossError
from nuclei.training.trainer import AtomicCheckpointIO

POISONED_STEP = 3


class PoisonBatchAtStep(L.Callback):
    """Test fault: fills one training batch with NaN, as a corrupt input would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step == self.step:
            batch["image"].fill_(float("nan"))


def test_nan_loss_stops_the_run_and_leaves_the_last_good_weights(train_config) -> None:
    cfg = train_config("trainer.max_epochs=3")
    with open_dict(cfg):
        cfg.callbacks.poison = {"_target_": f"{__name__}.PoisonBatchAtStep", "step": POISONED_STEP}
    run_dir = Path(cfg.paths.output_dir)

    with pytest.raises(NonFiniteLossError) as raised:
        train(cfg)

    message = str(raised.value)
    assert f"step {POISONED_STEP}" in message and "nan" in message
    assert "on_exception.ckpt" in message and "optimizer.lr" in message
    assert not (run_dir / "metrics.json").exists()
    checkpoint = torch.load(run_dir / "checkpoints" / "on_exception.ckpt", weights_only=True)
    assert checkpoint["global_step"] == POISONED_STEP  # stopped before that step's update
    weights = checkpoint["state_dict"].values()
    assert all(torch.isfinite(w).all() for w in weights if w.is_floating_point())

    # Run again in the same folder without the fault: refused, as the folder holds a run,
    # unless told to overwrite it (resuming is explicit too). It then starts afresh and,
    # ending normally, removes the exception checkpoint.
    with open_dict(cfg):
        del cfg.callbacks.poison
    with pytest.raises(RunFolderError, match="checkpoints"):
        train(cfg)
    cfg.overwrite_run = True
    summary = train(cfg)
    assert summary["epochs"] == 3
    assert not (run_dir / "checkpoints" / "on_exception.ckpt").exists()


def test_a_normal_run_uses_atomic_checkpoints_and_leaves_no_exception_checkpoint(
    train_config, recwarn: pytest.WarningsRecorder
) -> None:
    cfg = train_config("trainer.max_epochs=1", "task.map_every_n_epochs=0")
    train(cfg)
    # No implicit "resume from the last checkpoint" (Lightning's OnExceptionCheckpoint does it).
    assert not [w for w in recwarn if "last checkpoint" in str(w.message)]
    checkpoints = Path(cfg.paths.output_dir) / "checkpoints"
    names = sorted(p.name for p in checkpoints.iterdir())
    assert "last.ckpt" in names and "on_exception.ckpt" not in names
    assert not [n for n in names if n.startswith(".")]  # no temporary file left behind
    assert cfg.trainer.plugins[0]._target_ == "nuclei.training.trainer.AtomicCheckpointIO"


def test_atomic_write_keeps_the_old_file_when_writing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "metrics.json"
    atomic_write_text(target, "old\n")

    def fail(*_: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("nuclei.files.os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_atomic_checkpoint_io_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "model.ckpt"
    previous = os.umask(0o022)
    try:
        AtomicCheckpointIO().save_checkpoint({"w": torch.arange(3)}, path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # as open() makes it, not mkstemp's 0600
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.arange(3))
    assert [p.name for p in path.parent.iterdir()] == ["model.ckpt"]
