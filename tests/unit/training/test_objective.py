"""One objective drives best checkpoint, early stopping, the sweep value and the summary."""

from __future__ import annotations

import math

import pytest
from hydra import compose, initialize_config_module

from nuclei.training.objective import Objective


def compose_train(*overrides: str):
    with initialize_config_module(version_base="1.3", config_module="nuclei.conf"):
        return compose("train", overrides=list(overrides))


def test_callbacks_follow_the_objective() -> None:
    cfg = compose_train("callbacks=early_stopping", "objective.metric=val/map")
    assert cfg.callbacks.model_checkpoint.monitor == "val/map"
    assert cfg.callbacks.early_stopping.monitor == "val/map"
    assert cfg.callbacks.model_checkpoint.mode == cfg.callbacks.early_stopping.mode == "max"
    assert "map{val/map:.4f}" in cfg.callbacks.model_checkpoint.filename
    loss = compose_train(
        "callbacks=early_stopping", "objective.metric=val/loss", "objective.mode=min"
    )
    assert loss.callbacks.early_stopping.mode == "min"


def test_objective_mode_is_checked_at_composition() -> None:
    with pytest.raises(Exception, match="objective"):
        compose_train("objective.mood=max")


def test_sort_key_puts_the_best_first_and_missing_last() -> None:
    best_high = sorted([0.2, None, 0.9, math.nan], key=Objective("val/iou", "max").sort_key)
    assert best_high[:2] == [0.9, 0.2]
    best_low = sorted([0.2, None, 0.9], key=Objective("val/loss", "min").sort_key)
    assert best_low[:2] == [0.2, 0.9]
    with pytest.raises(ValueError, match=r"objective\.mode"):
        Objective("val/iou", "best")
