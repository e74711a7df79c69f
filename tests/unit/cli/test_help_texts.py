"""Every command's ``--help`` shows its own usage line, examples and options, and no group
that is not its own (the console scripts, run as a user runs them)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
TRAINING_GROUPS = ("experiment", "debug", "hparams_search", "optimizer", "scheduler")


def help_of(command: str, cwd: Path) -> str:
    done = subprocess.run(
        [str(BIN / command), "--help"], capture_output=True, text=True, cwd=cwd, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def listed_groups(text: str) -> set[str]:
    """Names of the config groups a help text lists (``group: option, option`` lines)."""
    return set(re.findall(r"^\s*(\w+): \w+(?:, \w+)+", text, re.M))


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("nuclei-eval", ["ckpt_path=", "split=", "device=", "batch_size=", "output="]),
        ("nuclei-tune", ["ckpt_path=", "grid.KEY=", "dry_run=", "top=", "device=", "batch_size="]),
        ("nuclei-summarize", ["sweep=", "output=", "progress_bar="]),
    ],
)
def test_checkpoint_and_sweep_commands_show_their_own_options_only(
    command: str, options: list[str], tmp_path: Path
) -> None:
    text = help_of(command, tmp_path)
    assert text.startswith(f"{command}: ")
    assert f"Usage: {command} " in text and "Examples:" in text
    for option in options:
        assert option in text, option
    assert not listed_groups(text) & set(TRAINING_GROUPS), listed_groups(text)
    assert "powered by Hydra" not in text  # Hydra's generic header is replaced
    assert not (tmp_path / "outputs").exists()  # --help writes nothing


def test_eval_help_explains_inherited_keys(tmp_path: Path) -> None:
    text = help_of("nuclei-eval", tmp_path)
    assert "??? keeps the training run's value" in text and "not mandatory" in text
    assert "data:" in text and "postprocess:" in text  # the inherited sections are shown


def test_predict_help_shows_its_usage_and_no_training_groups(tmp_path: Path) -> None:
    text = help_of("nuclei-predict", tmp_path)
    assert "Usage: nuclei-predict " in text
    assert not listed_groups(text) & set(TRAINING_GROUPS), listed_groups(text)


def test_train_help_lists_its_groups_and_examples(tmp_path: Path) -> None:
    text = help_of("nuclei-train", tmp_path)
    assert text.startswith("nuclei-train: ") and "Usage: nuclei-train " in text
    assert {"model", "trainer", "experiment", "debug", "data"} <= listed_groups(text)
    assert "nuclei-train -m " in text  # the sweep form is shown
