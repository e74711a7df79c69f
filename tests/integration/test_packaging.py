"""The console script works from any directory, and a built wheel ships the configs."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: What a build from a copy of the working tree leaves out: environments, history, outputs,
#: caches, and the build's own products (a copy must not start from stale ones).
NOT_COPIED = shutil.ignore_patterns(
    ".venv", ".git", "outputs", "site", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"
)


def build_products(root: Path) -> dict[str, tuple[int, int]]:
    """What a setuptools build writes into a source tree: ``build/``, ``dist/`` and
    ``*.egg-info/`` under ``root``, each file with its modification time and size."""
    found = {}
    for top in [root / "build", root / "dist", *root.glob("*.egg-info")]:
        for path in [top, *top.rglob("*")] if top.exists() else []:
            stat = path.stat()
            found[str(path.relative_to(root))] = (stat.st_mtime_ns, stat.st_size)
    return found


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_console_script_trains_from_another_directory(tmp_path: Path, synthetic_root: Path) -> None:
    run(
        [
            str(BIN / "nuclei-train"),
            f"data.source.root={synthetic_root}",
            "trainer=cpu",
            "trainer.max_epochs=1",
            "data.size.image_size=32",
            "data.loader.batch_size=4",
            "model.depth=2",
            "model.base_channels=4",
            f"paths.root_dir={tmp_path / 'runs'}",
        ],
        cwd=tmp_path,
    )
    metrics = list((tmp_path / "runs" / "train").glob("*/metrics.json"))
    assert len(metrics) == 1
    run_dir = metrics[0].parent
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()


def test_module_entry_point_prints_help(tmp_path: Path) -> None:
    out = run([sys.executable, "-m", "nuclei.cli.train", "--help"], cwd=tmp_path)
    for group in ("data", "model", "optimizer", "trainer", "callbacks", "logger"):
        assert f"{group}:" in out


def test_wheel_ships_configs_and_composes_outside_the_repo(tmp_path: Path) -> None:
    """The wheel is built from a copy of the working tree: the source tree gets no
    ``build/`` and its ``*.egg-info`` is not rewritten."""
    pytest.importorskip("setuptools")
    before = build_products(REPO)
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=NOT_COPIED)
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path / "dist"),
            str(source),
        ],
        cwd=tmp_path,
    )
    assert build_products(REPO) == before  # the source tree untouched
    assert (source / "build").is_dir()  # where the build went instead
    (wheel,) = (tmp_path / "dist").glob("nuclei-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for config in ("train.yaml", "data/default.yaml", "model/unet.yaml", "trainer/default.yaml"):
        assert f"nuclei/conf/{config}" in names
    site = tmp_path / "site"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        cwd=tmp_path,
    )
    # PYTHONPATH puts the wheel's copy ahead of the editable install (checked in the script).
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONNOUSERSITE": "1"}
    script = (
        "import nuclei, nuclei.conf, sys\n"
        "assert nuclei.__file__.startswith(sys.argv[1]), nuclei.__file__\n"
        "assert nuclei.conf.__file__.startswith(sys.argv[1]), nuclei.conf.__file__\n"
        "from nuclei.cli.train import main\nsys.argv = ['nuclei-train', '--cfg', 'job']\nmain()"
    )
    out = run([sys.executable, "-c", script, str(site)], cwd=tmp_path, env=env)
    assert "_target_: nuclei.models.unet.build_unet" in out
