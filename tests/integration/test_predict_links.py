"""Symbolic links in an input folder: one that leads to an image is segmented; one that
leads nowhere (a loop, a missing target) is reported as a failed image, not passed over."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from hydra import compose, initialize_config_module

from nuclei.cli.predict import predict


def test_broken_links_are_reported_and_good_ones_segmented(
    trained_run: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    source = next(synthetic_root.glob("*/images/*.png"))
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(source, folder / "real.png")
    os.symlink(folder / "real.png", folder / "linked.png")
    os.symlink(folder / "loop-b.png", folder / "loop-a.png")
    os.symlink(folder / "loop-a.png", folder / "loop-b.png")
    os.symlink(folder / "gone.png", folder / "dangling.png")
    with initialize_config_module(version_base="1.3", config_module="nuclei.conf"):
        cfg = compose(
            "predict",
            overrides=[
                "progress_bar=false",
                f"ckpt_path={trained_run / 'checkpoints' / 'last.ckpt'}",
                f"input={folder}",
                f"output={tmp_path / 'out'}",
            ],
        )
    report = predict(cfg)
    assert sorted(report.images) == ["linked", "real"]
    failed = {Path(path).stem: message for path, message in dict(report.failures).items()}
    assert sorted(failed) == ["dangling", "loop-a", "loop-b"], report.failures
    assert "symbolic links" in failed["loop-a"] and "dangling.png" in failed["dangling"]
