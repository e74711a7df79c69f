"""The overrides users already type keep working; a typo or a wrong type stops at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from nuclei.cli.overrides import translate_arguments

TRAIN = Path(sys.executable).parent / "nuclei-train"


def test_flat_data_keys_become_grouped_keys_and_others_pass() -> None:
    arguments, notes = translate_arguments(
        ["-m", "data.root=/d", "data.target=border,binary", "model=smp_unet", "ckpt_path=x"]
    )
    assert arguments == [
        "-m",
        "data.source.root=/d",
        "data.target.kind=border,binary",
        "model=smp_unet",
        "ckpt_path=x",
    ]
    assert len(notes) == 2 and "data.root is now data.source.root" in notes[0]


def test_nuclei_train_reads_the_old_keys(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(TRAIN), "data.root=/data/stage1_train", "data.image_size=64", "--cfg", "job"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    cfg = yaml.safe_load(done.stdout)
    assert cfg["data"]["source"]["root"] == "/data/stage1_train"
    assert cfg["data"]["size"]["image_size"] == 64
    assert "data.image_size is now data.size.image_size" in done.stderr


def test_a_wrong_type_fails_before_anything_runs_naming_the_key(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(TRAIN), "data.size.image_size=abc"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode != 0
    assert "data.size.image_size" in done.stderr and "abc" in done.stderr
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("*.ckpt"))


def test_each_command_reads_its_positional_argument_and_old_flags() -> None:
    from nuclei.cli.summarize import APP as SUMMARIZE
    from nuclei.cli.tune import APP as TUNE

    grid = ["--grid", "threshold=0.4,0.5", "flood=probability"]
    flags = ["--out", "best.json", "--top=5", "--dry-run", "--no-progress"]
    arguments, notes = translate_arguments(
        ["/runs/epoch=3-step=40.ckpt", *grid, *flags, "device=cpu"], TUNE.words
    )
    assert arguments == [
        "ckpt_path='/runs/epoch=3-step=40.ckpt'",  # quoted: Hydra reads the path whole
        "grid.threshold=[0.4,0.5]",
        "grid.flood=[probability]",
        "output=best.json",
        "top=5",
        "dry_run=true",
        "progress_bar=false",
        "device=cpu",
    ]
    assert len(notes) == 5 and notes[0].startswith("--grid threshold=0.4,0.5 flood=probability")

    arguments, notes = translate_arguments(["sweeps/a b", "--out", "x,y"], SUMMARIZE.words)
    assert arguments == ["sweep='sweeps/a b'", "output='x,y'"] and len(notes) == 1
    # Hydra's own flags keep their values: "job" is not the sweep folder.
    assert translate_arguments(["--cfg", "job", "s"], SUMMARIZE.words)[0] == [
        "--cfg",
        "job",
        "sweep='s'",
    ]
