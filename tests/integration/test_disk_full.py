"""A full disk is named: the file being written, and that the disk is full, in one line.

Each test writes onto a small tmpfs of its own, really full (mounting one needs root, which
CI has; elsewhere the tests skip and say so).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from support.training import FAST_TRAIN_OVERRIDES, SMALL_UNET_OVERRIDES

from nuclei.cli.predict import predict
from nuclei.files import DiskFullError, atomic_write_text


def mount_small_disk(folder: Path, size: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
    )
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A tmpfs of ``request.param`` bytes (default 256k) mounted in ``tmp_path``."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system to fill needs root (CI runs as root)")
    folder = tmp_path / "disk"
    if not mount_small_disk(folder, getattr(request, "param", "256k")):
        pytest.skip("this machine does not let root mount a tmpfs")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_full_disk_names_the_file_and_leaves_no_temporary(small_disk: Path) -> None:
    target = small_disk / "metrics.json"
    with pytest.raises(DiskFullError, match=r"metrics\.json: the disk is full"):
        atomic_write_text(target, "x" * 1_000_000)
    assert list(small_disk.iterdir()) == []


def test_training_onto_a_full_disk_stops_in_one_line(
    small_disk: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "nuclei.cli.train",
            *FAST_TRAIN_OVERRIDES,
            *SMALL_UNET_OVERRIDES,
            "trainer.max_epochs=1",
            "logger=csv",
            f"data.source.root={synthetic_root}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            f"hydra.run.dir={small_disk / 'run'}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert "the disk is full" in lines[-1] and str(small_disk) in lines[-1], done.stderr[-3000:]
    assert not any("Traceback" in line for line in lines), done.stderr[-3000:]


@pytest.mark.parametrize("small_disk", ["48k"], indirect=True)
def test_predicting_onto_a_full_disk_names_the_file(
    small_disk: Path, trained_run: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    checkpoint = trained_run / "checkpoints" / "last.ckpt"
    with initialize_config_module(version_base="1.3", config_module="nuclei.conf"):
        cfg = compose(
            "predict",
            overrides=[
                "progress_bar=false",
                f"ckpt_path={checkpoint}",
                f"input={synthetic_root}",
                f"output={small_disk / 'predicted'}",
            ],
        )
    with pytest.raises(DiskFullError, match=rf"{small_disk}/predicted/\S+: the disk is full"):
        predict(cfg)
