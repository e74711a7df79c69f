"""What produced a run: project version, git commit, package versions, command, host, time.

Written to ``<run>/run_info.json`` at the start of every training run (a resumed run adds its
own record under ``"resumed"``), so any run can be traced back to the code that made it.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

import nuclei
from nuclei.files import atomic_write_text
from nuclei.runs.run_dir import RunDir

#: Distributions whose versions decide what a run computes.
PACKAGES = (
    "nuclei",
    "torch",
    "torchvision",
    "lightning",
    "torchmetrics",
    "segmentation-models-pytorch",
    "albumentations",
    "hydra-core",
    "omegaconf",
    "numpy",
    "scipy",
    "scikit-image",
    "pillow",
    "tensorboard",
)

PROJECT_DIR = Path(nuclei.__file__).resolve().parent.parent


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (None when it is not installed)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(directory: Path = PROJECT_DIR) -> dict[str, Any] | None:
    """HEAD commit of the git checkout holding ``directory`` and whether it has local changes.

    None when ``directory`` is not in a git checkout (an installed wheel) or git is missing.
    """
    if not (directory / ".git").exists():
        return None
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=directory,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"commit": head, "dirty": bool(status.strip())}


def run_info() -> dict[str, Any]:
    """The facts about this process that identify what produced a run."""
    git = git_commit()
    return {
        "project_version": nuclei.__version__,
        "git_commit": git["commit"] if git else None,
        "git_dirty": git["dirty"] if git else None,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "torch_build": {"version": torch.__version__, "cuda": torch.version.cuda},
        "command": [sys.executable, *sys.argv],
        "cwd": os.getcwd(),
        "hostname": socket.gethostname(),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_run_info(run_dir: RunDir) -> Path:
    """Write :func:`run_info` to the run's run-info file (atomically).

    If the file is already there (a resumed run), the first record is kept and this one is
    appended to its ``"resumed"`` list.
    """
    path = run_dir.run_info_file
    info = run_info()
    if path.is_file():
        first = json.loads(path.read_text())
        first.setdefault("resumed", []).append(info)
        info = first
    return atomic_write_text(path, json.dumps(info, indent=2) + "\n")
