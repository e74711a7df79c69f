"""Errors a user can fix end every command the same way: the message, exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hydra.errors import InstantiationException
from support.samples import labelled_set, write_kaggle
from support.training import FAST_TRAIN_OVERRIDES

from nuclei.cli.app import App, check_overrides, did_you_mean, user_errors

BIN = Path(sys.executable).parent


def run(command: str, *arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "HYDRA_FULL_ERROR"}
    return subprocess.run(
        [str(BIN / command), *arguments],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("config", "override", "suggestion"),
    [
        ("train", "data.size.imagesize=64", "data.size.image_size"),
        ("train", "modle=unet", "model"),
        ("eval", "batchsize=4", "batch_size"),
        ("tune", "grid.treshold=[0.4,0.5]", "grid.threshold"),
        ("summarize", "outptu=x", "output"),
    ],
)
def test_a_mistyped_key_is_named_with_the_closest_key(
    config: str, override: str, suggestion: str
) -> None:
    problem = check_overrides(App(f"nuclei-{config}", config), ["ckpt_path=x", override])
    if config in ("train", "summarize"):
        problem = check_overrides(App(f"nuclei-{config}", config), [override])
    assert problem is not None and problem.endswith(f"did you mean '{suggestion}'?")
    assert "To append" not in problem  # Hydra's advice (+key=...) does not fit a typo


def test_help_multirun_and_good_command_lines_are_not_checked() -> None:
    app = App("nuclei-train", "train")
    assert check_overrides(app, ["data.size.image_size=64", "model=smp_unet"]) is None
    assert check_overrides(app, ["-m", "data.size.imagesize=64,128"]) is None  # Hydra's job
    assert check_overrides(app, ["--help"]) is None
    assert did_you_mean("zzz", ["data.size.image_size", "model"]) is None


def test_a_mistyped_key_ends_the_command_with_status_2(tmp_path: Path) -> None:
    done = run("nuclei-train", "data.size.imagesize=64", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("nuclei-train: Could not override 'data.size.imagesize'")
    assert "did you mean 'data.size.image_size'?" in done.stderr
    assert "Traceback" not in done.stderr and "HYDRA_FULL_ERROR" not in done.stderr
    assert not (tmp_path / "outputs").exists()


def test_a_missing_checkpoint_gives_status_2_and_one_line(tmp_path: Path) -> None:
    done = run("nuclei-tune", str(tmp_path / "nope.ckpt"), "progress_bar=false", cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [f"nuclei-tune: {tmp_path / 'nope.ckpt'}: checkpoint file not found"]


def test_training_on_a_truncated_png_gives_status_2_and_no_traceback(tmp_path: Path) -> None:
    root = write_kaggle(tmp_path / "stage1_train", labelled_set("s", 4))
    png = root / "s1" / "images" / "s1.png"
    png.write_bytes(png.read_bytes()[:60])
    done = run("nuclei-train", *FAST_TRAIN_OVERRIDES, f"data.source.root={root}", cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert f"nuclei-train: 1 problem(s) in {root}" in done.stderr
    assert f"{png}: cannot be read as an image" in done.stderr
    (log,) = (tmp_path / "outputs" / "train").glob("*/train.log")
    assert f"{png}: cannot be read as an image" in log.read_text()  # the run's log says so too


@dataclass
class Options:
    size: int

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"size must be >= 1, got {self.size}")


def test_option_errors_exit_with_2_and_bugs_keep_their_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(SystemExit) as exited, user_errors("nuclei-x"):
        try:
            Options(size=0)
        except ValueError as exc:  # as Hydra's instantiate wraps it
            raise InstantiationException("Error in call to target 'Options'") from exc
    assert exited.value.code == 2
    assert capsys.readouterr().err == "nuclei-x: size must be >= 1, got 0\n"

    with pytest.raises(ValueError, match="a bug"), user_errors("nuclei-x"):
        raise ValueError("a bug")  # not an option check: a real bug, shown whole

    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(FileNotFoundError), user_errors("nuclei-x"):
        raise FileNotFoundError("missing.png")
