"""The commands print their own output, not Lightning's advertisements or the deprecation
warnings a user cannot act on: real commands, run as a user runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from support.training import run_train

BIN = Path(sys.executable).parent
#: What Lightning and torch print that a user of nuclei can do nothing about.
NOISE = ("💡", "litlogger", "litmodels", "LeafSpec", "is deprecated")


def assert_quiet(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, done.stderr
    for noise in NOISE:
        assert noise not in done.stdout and noise not in done.stderr, noise


def test_nuclei_train_prints_no_advertisement_or_deprecation(
    synthetic_root: Path, tmp_path: Path
) -> None:
    done = run_train(
        "trainer.max_epochs=1",
        f"data.source.root={synthetic_root}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert_quiet(done)
    assert "Best checkpoint" in done.stdout + done.stderr  # its own messages still shown


def test_nuclei_predict_prints_no_advertisement_or_deprecation(
    trained_run: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    checkpoint = Path(json.loads((trained_run / "metrics.json").read_text())["best_checkpoint"])
    images = tmp_path / "images"
    images.mkdir()
    for source in sorted(synthetic_root.glob("*/images/*.png"))[:2]:
        shutil.copy(source, images / source.name)
    done = subprocess.run(
        [
            BIN / "nuclei-predict",
            f"ckpt_path={checkpoint}",
            f"input={images}",
            f"output={tmp_path / 'out'}",
            "progress_bar=false",
            "decode_workers=0",
            "postprocess_workers=0",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert_quiet(done)
    assert "images segmented" in done.stdout
