"""A configuration stored before a configured class moved still loads, building the same
class under its name now, without ``trust_checkpoint``."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from nuclei.runs.checkpoint import MOVED_TARGETS, checked_run_config, packaged_targets


def test_every_moved_target_is_named_by_the_configs_now() -> None:
    assert set(MOVED_TARGETS.values()) <= packaged_targets()


def test_a_stored_configuration_naming_former_targets_loads_with_the_current_ones() -> None:
    stored = OmegaConf.create(
        {
            "task": {"net": {"depth": 2}},
            "callbacks": {
                "on_exception": {
                    "_target_": "nuclei.training.callbacks.safety.CheckpointOnException",
                    "path": "checkpoints/on_exception.ckpt",
                },
                "epoch_log": {"_target_": "nuclei.training.callbacks.epoch_log.EpochLog"},
            },
            "trainer": {"plugins": [{"_target_": "nuclei.runs.atomic.AtomicCheckpointIO"}]},
        }
    )
    cfg = checked_run_config(stored, Path("run/checkpoints/last.ckpt"))
    assert cfg.callbacks.on_exception._target_ == "nuclei.training.callbacks.CheckpointOnException"
    assert cfg.callbacks.on_exception.path == "checkpoints/on_exception.ckpt"
    assert cfg.callbacks.epoch_log._target_ == "nuclei.training.callbacks.EpochLog"
    assert cfg.trainer.plugins[0]._target_ == "nuclei.training.trainer.AtomicCheckpointIO"
