"""nuclei-train writes a new run only where no other run is: a finished run, the filesystem
root, a file or a sweep folder holding runs is refused (one line, exit 2) with nothing written."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from omegaconf import OmegaConf, open_dict
from support.training import run_train

from nuclei.cli.train import train
from nuclei.runs.run_folder import RunFolderError


def checksums(folder: Path) -> dict[str, str]:
    """SHA-256 of every file below ``folder`` (and a mark for every folder), by path."""
    found = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        found[name] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return found


def refused_in_one_line(done: subprocess.CompletedProcess, *words: str) -> str:
    """The single stderr line of a command that ended with exit status 2, naming ``words``."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("nuclei-train: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def finished_copy(trained_run: Path, tmp_path: Path, train_config) -> Path:
    """A copy of a finished run (checkpoints, metrics.json, split.json) with the
    ``.hydra/config.yaml`` that nuclei-train saves beside them."""
    copy = tmp_path / "finished"
    shutil.copytree(trained_run, copy)
    (copy / ".hydra").mkdir(exist_ok=True)
    (copy / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(train_config()))
    for name in ("metrics.json", "split.json", ".hydra/config.yaml", "checkpoints/last.ckpt"):
        assert (copy / name).is_file(), name
    return copy


def test_a_run_dir_holding_a_finished_run_is_refused_and_left_as_it_was(
    finished_copy: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    before = checksums(finished_copy)
    done = run_train(
        f"data.source.root={synthetic_root}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={finished_copy}",
        cwd=tmp_path,
    )
    refused_in_one_line(
        done, f"hydra.run.dir={finished_copy}", "metrics.json", "resume=", "overwrite_run=true"
    )
    assert checksums(finished_copy) == before


def test_an_output_dir_holding_a_finished_run_is_refused_before_the_run_dir_is_made(
    finished_copy: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    before = checksums(finished_copy)
    fresh = tmp_path / "fresh"
    done = run_train(
        f"data.source.root={synthetic_root}",
        f"paths.output_dir={finished_copy}",
        f"hydra.run.dir={fresh}",
        cwd=tmp_path,
    )
    refused_in_one_line(done, f"paths.output_dir={finished_copy}", "checkpoints")
    assert checksums(finished_copy) == before
    assert not fresh.exists()


def test_train_called_with_a_finished_run_as_its_folder_refuses(
    finished_copy: Path, train_config
) -> None:
    before = checksums(finished_copy)
    cfg = train_config()
    with open_dict(cfg):
        cfg.paths.output_dir = str(finished_copy)
    with pytest.raises(RunFolderError, match=r"paths.output_dir=.*already holds a run"):
        train(cfg)
    assert checksums(finished_copy) == before


def test_the_filesystem_root_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    written = [Path("/.hydra"), Path("/train.log"), Path("/checkpoints"), Path("/metrics.json")]
    existed = {path: path.exists() for path in written}
    # No data either: a run that got past the check would stop at its data, not train at /.
    done = run_train(f"data.source.root={tmp_path / 'no-data'}", "hydra.run.dir=/", cwd=tmp_path)
    refused_in_one_line(done, "hydra.run.dir=/:", "root")
    assert {path: path.exists() for path in written} == existed


def test_a_file_as_run_dir_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "results.txt"
    file.write_text("keep me\n")
    done = run_train(
        f"data.source.root={tmp_path / 'no-data'}", f"hydra.run.dir={file}", cwd=tmp_path
    )
    refused_in_one_line(done, f"hydra.run.dir={file}:", "file")
    assert file.read_text() == "keep me\n"


def test_a_sweep_folder_holding_runs_is_refused(
    trained_run: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    sweep = tmp_path / "sweep"
    shutil.copytree(trained_run, sweep / "0")
    before = checksums(sweep)
    done = run_train(
        "-m",
        f"data.source.root={synthetic_root}",
        "optimizer.lr=1e-3,2e-3",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    refused_in_one_line(done, f"hydra.sweep.dir={sweep}", "overwrite_run=true")
    assert checksums(sweep) == before
