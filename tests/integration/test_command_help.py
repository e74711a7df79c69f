"""``--help`` of every console script: the command's own help text, exit status 0, and none
of the libraries that only running a command needs (torch, Lightning) imported to show it.
No time is measured here (scripts/benchmark_help.py does): what makes help slow is imports."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
#: Console script -> the module whose ``main`` runs the command.
COMMANDS = {
    "nuclei-train": "nuclei.cli.train",
    "nuclei-eval": "nuclei.cli.evaluate",
    "nuclei-predict": "nuclei.cli.predict",
    "nuclei-tune": "nuclei.cli.tune",
    "nuclei-summarize": "nuclei.cli.summarize",
}
#: Imported by running a command, never needed to show its help.
HEAVY = ("torch", "lightning", "torchvision", "torchmetrics", "pandas", "albumentations")


def run(command: list[str | Path], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


def run_module_main(name: str, flag: str, cwd: Path) -> subprocess.CompletedProcess:
    """``name flag`` through the ``main`` of the command's own module, every import made:
    what the console script ran before it answered help itself (same ``sys.argv[0]``)."""
    code = (
        f"import sys; sys.argv[0] = {str(BIN / name)!r}; from {COMMANDS[name]} import main; main()"
    )
    return run([sys.executable, "-c", code, flag], cwd)


@pytest.mark.parametrize("flag", ["--help", "--hydra-help"])
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_is_the_command_s_own_and_exits_0(name: str, flag: str, tmp_path: Path) -> None:
    shown = run([BIN / name, flag], tmp_path)
    assert shown.returncode == 0, shown.stderr
    if flag == "--help":
        assert shown.stdout.startswith(f"{name}: ") and f"Usage: {name}" in shown.stdout
    else:
        assert "--cfg" in shown.stdout and f"{name} -sc install=bash" in shown.stdout
    full = run_module_main(name, flag, tmp_path)
    assert full.returncode == 0, full.stderr
    assert shown.stdout == full.stdout
    assert not list(tmp_path.iterdir())  # help writes nothing (no outputs/ folder)


@pytest.mark.parametrize("flag", ["--help", "-h", "--hydra-help"])
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_imports_neither_torch_nor_lightning(name: str, flag: str, tmp_path: Path) -> None:
    shown = run([sys.executable, "-X", "importtime", BIN / name, flag], tmp_path)
    assert shown.returncode == 0, shown.stderr
    imported = set(re.findall(r"^import time:.*\|\s*([\w.]+)$", shown.stderr, re.M))
    assert imported, "no import listed: -X importtime did not run"
    assert not [module for module in HEAVY if module in imported]
