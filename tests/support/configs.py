"""Composed configs of the console scripts, for tests that call their functions directly."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_module
from omegaconf import DictConfig


def predict_config(ckpt: Path, source: Path, out: Path, *overrides: str) -> DictConfig:
    """``predict.yaml`` composed for ``ckpt`` on ``source`` into ``out``, without progress bars."""
    with initialize_config_module(version_base="1.3", config_module="nuclei.conf"):
        return compose(
            "predict",
            overrides=[
                f"ckpt_path={ckpt}",
                f"input={source}",
                f"output={out}",
                "progress_bar=false",
                *overrides,
            ],
        )
