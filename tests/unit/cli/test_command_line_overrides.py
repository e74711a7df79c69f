"""Each command's own spellings become overrides; an unknown key or a wrong type stops at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from nuclei.cli.overrides import translate_arguments

TRAIN = Path(sys.executable).parent / "nuclei-train"


def test_an_old_flat_data_key_is_refused_naming_it(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(TRAIN), "data.root=/data/stage1_train"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("nuclei-train: Could not override 'data.root'")
    assert "did you mean 'data.source.root'?" in done.stderr
    assert not (tmp_path / "outputs").exists()


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
