"""A run whose console goes to a file still writes a line per epoch to its train.log."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from support.training import FAST_TRAIN_OVERRIDES, SMALL_UNET_OVERRIDES


def test_redirected_run_logs_one_line_per_epoch_in_train_log(
    synthetic_root: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    with_progress_bar = [o for o in FAST_TRAIN_OVERRIDES if not o.startswith("callbacks.progress")]
    command = [
        sys.executable,
        "-m",
        "nuclei.cli.train",
        *with_progress_bar,  # the Rich bar stays on: the lines must not depend on it
        *SMALL_UNET_OVERRIDES,
        "trainer.max_epochs=3",
        "task.map_every_n_epochs=0",
        f"data.source.root={synthetic_root}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={run_dir}",
    ]
    console = tmp_path / "console.txt"
    with console.open("w") as out:
        done = subprocess.run(
            command, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, timeout=300
        )
    assert done.returncode == 0, console.read_text()[-3000:]

    log_lines = (run_dir / "train.log").read_text().splitlines()
    epochs = [line for line in log_lines if re.search(r"\bepoch \d/3  step \d+", line)]
    assert len(epochs) == 3, "\n".join(log_lines)
    for number, line in enumerate(epochs, start=1):
        assert f"epoch {number}/3" in line
        for part in ("train/loss", "val/loss", "val/iou", "lr ", "s/epoch", "ETA "):
            assert part in line, line
    printed = console.read_text().splitlines()
    assert sum(bool(re.search(r"\bepoch \d/3  step", line)) for line in printed) == 3
