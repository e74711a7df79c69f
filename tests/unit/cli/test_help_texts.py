"""Every command's ``--help`` shows its own usage line, examples and options, and no group
that is not its own (each console script's entry point, run in this process as its script
runs it: only ``sys.argv`` differs; the console scripts themselves are run by other tests)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig

from nuclei.cli.launch import launch

TRAINING_GROUPS = ("experiment", "debug", "hparams_search", "optimizer", "scheduler")


def help_of(command: str, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """What ``<command> --help`` prints, run from ``cwd``; it must exit with status 0.

    Hydra keeps the app's config in process-wide singletons: they are put back as they were
    afterwards, so that later tests do not see a Hydra run that is not theirs.
    """
    monkeypatch.setattr(HydraConfig.instance(), "cfg", HydraConfig.instance().cfg)
    monkeypatch.chdir(cwd)
    monkeypatch.setattr("sys.argv", [command, "--help"])
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), pytest.raises(SystemExit) as exited:
        launch(command)  # the console script's function (pyproject.toml [project.scripts])
    assert exited.value.code in (0, None)
    GlobalHydra.instance().clear()
    return printed.getvalue()


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
    command: str, options: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = help_of(command, tmp_path, monkeypatch)
    assert text.startswith(f"{command}: ")
    assert f"Usage: {command} " in text and "Examples:" in text
    for option in options:
        assert option in text, option
    assert not listed_groups(text) & set(TRAINING_GROUPS), listed_groups(text)
    assert "powered by Hydra" not in text  # Hydra's generic header is replaced
    assert not (tmp_path / "outputs").exists()  # --help writes nothing


def test_eval_help_explains_inherited_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = help_of("nuclei-eval", tmp_path, monkeypatch)
    assert "??? keeps the training run's value" in text and "not mandatory" in text
    assert "data:" in text and "postprocess:" in text  # the inherited sections are shown


def test_predict_help_shows_its_usage_and_no_training_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = help_of("nuclei-predict", tmp_path, monkeypatch)
    assert "Usage: nuclei-predict " in text
    assert not listed_groups(text) & set(TRAINING_GROUPS), listed_groups(text)


def test_train_help_lists_its_groups_and_examples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = help_of("nuclei-train", tmp_path, monkeypatch)
    assert text.startswith("nuclei-train: ") and "Usage: nuclei-train " in text
    assert {"model", "trainer", "experiment", "debug", "data"} <= listed_groups(text)
    assert "nuclei-train -m " in text  # the sweep form is shown
