"""The console scripts: ``nuclei-train``, ``nuclei-eval``, ``nuclei-predict``, ``nuclei-tune``
and ``nuclei-summarize`` (``pyproject.toml`` ``[project.scripts]``).

Running a command needs torch and Lightning, seconds of imports; showing its help needs only
Hydra and the command's config. So a command line that only asks for help (``--help``,
``-h``, ``--hydra-help``) is answered here, by Hydra from the same config, exactly as the
command's own module would answer it; any other command line runs that module's ``main``
(:func:`nuclei.cli.app.run_app`: its own spellings, checks, the command). ``python -m
nuclei.cli.train`` and the others still run their modules directly.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import hydra
from omegaconf import DictConfig

#: The flags that only show help; Hydra prints it and exits without running anything.
HELP_FLAGS = frozenset({"--help", "-h", "--hydra-help"})


@dataclass(frozen=True)
class Script:
    """A console script: the module whose ``main`` runs it, and its primary config."""

    module: str
    config_name: str


SCRIPTS = {
    "nuclei-train": Script("nuclei.cli.train", "train"),
    "nuclei-eval": Script("nuclei.cli.evaluate", "eval"),
    "nuclei-predict": Script("nuclei.cli.predict", "predict"),
    "nuclei-tune": Script("nuclei.cli.tune", "tune"),
    "nuclei-summarize": Script("nuclei.cli.summarize", "summarize"),
}


def only_help(arguments: Sequence[str]) -> bool:
    """Whether a command line (without the program) asks for help and nothing else."""
    return bool(arguments) and all(argument in HELP_FLAGS for argument in arguments)


def show_help(config_name: str) -> None:
    """Hydra's help of the config ``config_name``, as the command's ``@hydra.main`` shows it
    (it reads ``sys.argv`` and exits); the function below is never called."""

    @hydra.main(version_base="1.3", config_path="pkg://nuclei.conf", config_name=config_name)
    def help_only(cfg: DictConfig) -> None:  # pragma: no cover - Hydra only prints help
        raise RuntimeError(f"{config_name}: only help was asked for")

    help_only()


def launch(name: str) -> None:
    """Run the console script ``name`` on ``sys.argv``: its help here, anything else in its
    module (imported only then)."""
    script = SCRIPTS[name]
    if only_help(sys.argv[1:]):
        show_help(script.config_name)
    else:
        importlib.import_module(script.module).main()


def train() -> None:
    """``nuclei-train`` (:mod:`nuclei.cli.train`)."""
    launch("nuclei-train")


def evaluate() -> None:
    """``nuclei-eval`` (:mod:`nuclei.cli.evaluate`)."""
    launch("nuclei-eval")


def predict() -> None:
    """``nuclei-predict`` (:mod:`nuclei.cli.predict`)."""
    launch("nuclei-predict")


def tune() -> None:
    """``nuclei-tune`` (:mod:`nuclei.cli.tune`)."""
    launch("nuclei-tune")


def summarize() -> None:
    """``nuclei-summarize`` (:mod:`nuclei.cli.summarize`)."""
    launch("nuclei-summarize")
