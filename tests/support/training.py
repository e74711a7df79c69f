"""Overrides, trainers and command lines for real training runs small enough for 2 CPU cores."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import lightning as L

# Small, fast settings for real training runs on 2 CPU cores.
FAST_TRAIN_OVERRIDES = [
    "trainer=cpu",
    "trainer.max_epochs=2",
    "trainer.log_every_n_steps=1",
    "data.size.image_size=64",
    "data.loader.batch_size=4",
    "data.source.decode_workers=1",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
]

SMALL_UNET_OVERRIDES = ["model.base_channels=8", "model.depth=3"]


def quiet_cpu_trainer(**settings: object) -> L.Trainer:
    """A CPU Trainer that writes nothing and prints nothing (``settings`` add to it)."""
    return L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **settings,
    )


def run_multirun(
    sweep: Path, data_root: Path, work_dir: Path, *overrides: str
) -> subprocess.CompletedProcess:
    """Run ``nuclei-train -m`` of small fast runs on ``data_root`` into ``sweep``, from
    ``work_dir`` (which also holds the data cache); output captured, 5 minutes at most."""
    command = [
        sys.executable,
        "-m",
        "nuclei.cli.train",
        "-m",
        *overrides,
        *FAST_TRAIN_OVERRIDES,
        *SMALL_UNET_OVERRIDES,
        f"data.source.root={data_root}",
        "task.map_every_n_epochs=0",
        f"paths.cache_dir={work_dir / 'cache'}",
        f"hydra.sweep.dir={sweep}",
    ]
    return subprocess.run(command, cwd=work_dir, capture_output=True, text=True, timeout=300)


def run_train(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``python -m nuclei.cli.train`` with the small fast settings, then ``overrides``
    (flags such as ``-m`` first), from ``cwd`` (errors as users see them: no
    ``HYDRA_FULL_ERROR``); output captured."""
    flags = [o for o in overrides if o.startswith("-")]
    command = [
        sys.executable,
        "-m",
        "nuclei.cli.train",
        *flags,
        *FAST_TRAIN_OVERRIDES,
        *SMALL_UNET_OVERRIDES,
        "task.map_every_n_epochs=0",
        *(o for o in overrides if o not in flags),
    ]
    env = {key: value for key, value in os.environ.items() if key != "HYDRA_FULL_ERROR"}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
