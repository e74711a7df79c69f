"""nuclei-train refuses settings that cannot train, and data with one id twice, as a user
sees it: one line naming the key (or both files), exit status 2, no run folder made."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from support.samples import labelled_set, write_kaggle
from support.training import run_train


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (("trainer.max_epochs=-5",), "trainer.max_epochs"),
        (("optimizer.lr=-1",), "optimizer.lr"),
        (("model.base_channels=0",), "model.base_channels"),
        (("model.depth=12",), "model.depth=12"),
        (("data.size.mode=crop", "data.size.crop_size=7"), "data.size.crop_size=7"),
        (("data.loader.batch_size=10000000",), "data.loader.batch_size=10000000"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else "",
)
def test_a_value_that_cannot_train_ends_in_one_line_and_writes_nothing(
    synthetic_root: Path, tmp_path: Path, overrides: tuple[str, ...], key: str
) -> None:
    run_dir = tmp_path / "run"
    done = run_train(
        f"data.source.root={synthetic_root}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={run_dir}",
        *overrides,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nuclei-train: "), done.stderr
    assert key in lines[0]
    assert not run_dir.exists()
    assert not (tmp_path / "cache").exists()  # no image was decoded


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_an_image_id_found_twice_in_the_data_is_an_error_naming_both_files(
    tmp_path: Path, suffix: str
) -> None:
    root = write_kaggle(tmp_path / "data", labelled_set("k", 6, shape=(64, 64)))
    twin = root / "copy-of-k1" / "images"
    twin.mkdir(parents=True)
    Image.open(root / "k1" / "images" / "k1.png").save(twin / f"k1{suffix}")
    done = run_train(
        f"data.source.root={root}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert str(root / "k1" / "images" / "k1.png") in done.stderr
    assert str(twin / f"k1{suffix}") in done.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()
