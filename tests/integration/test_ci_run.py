"""CI cannot pass with the SLURM tests silently skipped: ``.ci/run`` stops when SLURM cannot
start (unless ``NUCLEI_CI_ALLOW_NO_SLURM=1``), and the SLURM tests fail instead of skipping
under the ``NUCLEI_REQUIRE_SLURM=1`` it sets; on a machine without SLURM they still skip.

``.ci/run`` runs here in a copy of its folder whose ``make`` and ``scripts/ci/slurm_up.sh``
are stand-ins that record what they were asked, so nothing is installed, linted or tested.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
STAND_IN_MAKE = """#!/usr/bin/env bash
echo "$* NUCLEI_REQUIRE_SLURM=${NUCLEI_REQUIRE_SLURM:-}" >> "$(dirname "$0")/../make.log"
"""


def run_ci(
    tmp_path: Path, slurm_starts: bool, **env: str
) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run a copy of ``.ci/run`` whose SLURM start succeeds or fails; its result and the
    ``make`` targets it ran (each with the ``NUCLEI_REQUIRE_SLURM`` it saw)."""
    (tmp_path / ".ci").mkdir()
    shutil.copy2(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    (tmp_path / "scripts" / "ci").mkdir(parents=True)
    (tmp_path / "scripts" / "ci" / "slurm_up.sh").write_text(
        f"echo 'slurm_up: stand-in'; exit {0 if slurm_starts else 1}\n"
    )
    (tmp_path / "bin").mkdir()
    make = tmp_path / "bin" / "make"
    make.write_text(STAND_IN_MAKE)
    make.chmod(0o755)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("NUCLEI_")}
    environment |= {"PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}", **env}
    done = subprocess.run(
        ["bash", str(tmp_path / ".ci" / "run")],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
    )
    log = tmp_path / "make.log"
    return done, log.read_text().splitlines() if log.exists() else []


def test_ci_fails_when_slurm_cannot_start(tmp_path: Path) -> None:
    done, targets = run_ci(tmp_path, slurm_starts=False)
    assert done.returncode != 0
    assert "could not start SLURM" in done.stderr and "NUCLEI_CI_ALLOW_NO_SLURM=1" in done.stderr
    assert [t.split()[0] for t in targets] == ["install", "lint", "test"]  # no test-slow


def test_ci_without_slurm_only_when_allowed_and_with_a_warning(tmp_path: Path) -> None:
    done, targets = run_ci(tmp_path, slurm_starts=False, NUCLEI_CI_ALLOW_NO_SLURM="1")
    assert done.returncode == 0, done.stderr
    assert "WARNING: could not start SLURM: the SLURM tests will be SKIPPED" in done.stderr
    assert targets[-1] == "test-slow NUCLEI_REQUIRE_SLURM="


def test_ci_with_slurm_up_requires_it_in_the_slow_tests(tmp_path: Path) -> None:
    done, targets = run_ci(tmp_path, slurm_starts=True, NUCLEI_DSB2018=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr
    assert targets == [
        "install NUCLEI_REQUIRE_SLURM=",
        "lint NUCLEI_REQUIRE_SLURM=",
        "test NUCLEI_REQUIRE_SLURM=",
        "test-slow NUCLEI_REQUIRE_SLURM=1",
    ]


def test_ci_warns_when_the_real_images_are_missing(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    done, targets = run_ci(tmp_path, slurm_starts=True, NUCLEI_DSB2018=str(missing))
    assert done.returncode == 0, done.stderr
    assert f"no real DSB2018 images at {missing}" in done.stderr
    assert "SKIPPED" in done.stderr and targets[-1].startswith("test-slow")


@pytest.mark.parametrize("required", [False, True])
def test_slurm_tests_skip_without_slurm_unless_required(tmp_path: Path, required: bool) -> None:
    """Without ``sinfo`` on PATH the SLURM tests skip with the reason, or fail where required."""
    no_slurm_path = tmp_path / "empty"
    no_slurm_path.mkdir()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("NUCLEI_")}
    environment["PATH"] = str(no_slurm_path)
    if required:
        environment["NUCLEI_REQUIRE_SLURM"] = "1"
    done = subprocess.run(
        [*PYTEST, "-m", "slow", "-rs", "tests/integration/test_slurm.py", "-k", "sweep"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment,
        timeout=300,
    )
    if required:
        assert done.returncode == 1, done.stdout[-3000:]
        assert "NUCLEI_REQUIRE_SLURM=1 but no SLURM here" in done.stdout
    else:
        assert done.returncode == 0, done.stdout[-3000:]
        assert (
            "1 skipped" in done.stdout and "no SLURM here (sinfo/srun not on PATH)" in done.stdout
        )
