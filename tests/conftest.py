"""Shared fixtures: small generated data sets and composed training configs.

Helpers that write sample folders live in ``support.samples``; the fast-training overrides
in ``support.training``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import DictConfig, open_dict
from support.training import FAST_TRAIN_OVERRIDES, SMALL_UNET_OVERRIDES

from nuclei.cli.train import train
from nuclei.synthetic import generate_synthetic_dataset

# Commands run in this process (``main()``) would make its malloc keep freed memory
# (nuclei.runtime), and the tests that measure resident memory would then see none grow. Only
# tests/unit/test_heap.py turns it on, in its own processes.
os.environ["NUCLEI_KEEP_FREED_MEMORY"] = "0"


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-image synthetic set in the Kaggle layout (``stage1_train``), made once."""
    out = tmp_path_factory.mktemp("synthetic")
    return generate_synthetic_dataset(out, n_images=12, seed=3, workers=1, progress=False)


@pytest.fixture
def train_config(tmp_path: Path, synthetic_root: Path) -> Callable[..., DictConfig]:
    """Compose ``train.yaml`` with fast settings, writing into a temporary run directory."""

    def make(*overrides: str, small_unet: bool = True) -> DictConfig:
        model = SMALL_UNET_OVERRIDES if small_unet else []
        with initialize_config_module(version_base="1.3", config_module="nuclei.conf"):
            cfg = compose(
                "train",
                overrides=[
                    *FAST_TRAIN_OVERRIDES,
                    *model,
                    f"data.source.root={synthetic_root}",
                    *overrides,
                ],
            )
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / "run")
            cfg.paths.cache_dir = str(tmp_path / "cache")
        return cfg

    return make


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, synthetic_root: Path) -> Path:
    """The run directory of one short real training run (10 epochs of 5 steps, small U-Net),
    made once; its model finds the bright nuclei of the set (fewer steps do not, on the
    dim images of generator version 2).

    Its val/map is computed every 5 epochs, so its TensorBoard events show when.
    """
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    with initialize_config_module(version_base="1.3", config_module="nuclei.conf"):
        cfg = compose(
            "train",
            overrides=[
                *FAST_TRAIN_OVERRIDES,
                *SMALL_UNET_OVERRIDES,
                f"data.source.root={synthetic_root}",
                "trainer.max_epochs=10",
                "optimizer.lr=1e-2",
                "data.loader.batch_size=2",
                "task.map_every_n_epochs=5",
            ],
        )
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir)
        cfg.paths.cache_dir = str(run_dir.parent / "cache")
    train(cfg)
    return run_dir
