"""The console scripts answer a request for help themselves and hand anything else, unchanged,
to the command's own module."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import tomllib

from nuclei.cli import launch

PYPROJECT = Path(__file__).resolve().parents[3] / "pyproject.toml"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--help"], True),
        (["-h"], True),
        (["--hydra-help"], True),
        (["--help", "--hydra-help"], True),
        ([], False),
        (["--help", "trainer.max_epochs=3"], False),  # composed with the override: the module
        (["ckpt_path=x", "--help"], False),
        (["--cfg", "job"], False),
        (["run_folder/"], False),
    ],
)
def test_only_a_bare_help_request_is_answered_here(arguments: list[str], expected: bool) -> None:
    assert launch.only_help(arguments) is expected


@pytest.mark.parametrize("name", sorted(launch.SCRIPTS))
def test_any_other_command_line_runs_the_module_s_main(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []
    imported: list[str] = []

    def import_module(module: str) -> SimpleNamespace:
        imported.append(module)
        return SimpleNamespace(main=lambda: ran.append(module))

    monkeypatch.setattr(launch, "importlib", SimpleNamespace(import_module=import_module))
    monkeypatch.setattr(launch, "show_help", lambda config: pytest.fail("help shown"))
    monkeypatch.setattr("sys.argv", [name, "ckpt_path=x", "--help"])
    launch.launch(name)
    assert imported == ran == [launch.SCRIPTS[name].module]


def test_every_console_script_is_a_launch_function_of_its_own_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scripts = tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]
    assert set(scripts) == set(launch.SCRIPTS)
    called: list[str] = []
    monkeypatch.setattr(launch, "launch", called.append)
    for name, target in scripts.items():
        module, _, function = target.partition(":")
        assert module == "nuclei.cli.launch"
        getattr(launch, function)()
        assert called.pop() == name
