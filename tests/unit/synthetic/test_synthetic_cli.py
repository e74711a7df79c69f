"""``python -m nuclei.synthetic``: help and a small set."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nuclei.synthetic import image_id
from nuclei.synthetic.__main__ import main


def test_module_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nuclei.synthetic", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "stage1_train" in done.stdout
    for option in ("--n", "--seed", "--workers", "--no-progress", "--profile"):
        assert option in done.stdout
    assert "{default,shifted}" in done.stdout and "domain-shift" in done.stdout


def test_main_writes_and_summarises_a_set(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    main([str(tmp_path), "--n", "2", "--seed", "4", "--workers", "1", "--no-progress"])
    out = capsys.readouterr().out
    stage = tmp_path / "stage1_train"
    assert f"wrote 2 images to {stage}" in out
    assert "families: fluorescence=" in out and "nuclei: total=" in out
    assert sorted(p.name for p in stage.iterdir()) == sorted(image_id(4, i) for i in range(2))


def test_main_writes_a_shifted_set(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    main(
        [
            str(tmp_path),
            "--n",
            "2",
            "--seed",
            "4",
            "--profile",
            "shifted",
            "--workers",
            "1",
            "--no-progress",
        ]
    )
    assert "(profile shifted, seed 4)" in capsys.readouterr().out
    stage = tmp_path / "stage1_train"
    expected = sorted(image_id(4, i, "shifted") for i in range(2))
    assert sorted(p.name for p in stage.iterdir()) == expected
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--profile", "nope"])
