"""A training run's folder is refused when writing there would lose or scatter files."""

from __future__ import annotations

from pathlib import Path

import pytest

from nuclei.runs.run_dir import RunDir
from nuclei.runs.run_folder import RunFolderError, check_run_folder, check_sweep_folder


def finished_run(folder: Path) -> RunDir:
    """A folder holding what a finished run leaves (contents are not read)."""
    run = RunDir(folder)
    run.checkpoint_dir.mkdir(parents=True)
    run.last_checkpoint.write_bytes(b"weights")
    run.config_file.parent.mkdir()
    run.config_file.write_text("seed: 1\n")
    run.metrics_file.write_text("{}\n")
    run.split_file.write_text("{}\n")
    return run


def test_a_new_or_empty_folder_or_one_of_other_files_is_accepted(tmp_path: Path) -> None:
    check_run_folder(tmp_path / "new" / "run")
    check_run_folder(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    check_run_folder(tmp_path)


def test_the_filesystem_root_is_refused_even_with_overwrite() -> None:
    for overwrite in (False, True):
        with pytest.raises(RunFolderError, match=r"^hydra\.run\.dir=/: .*root"):
            check_run_folder(Path("/"), overwrite=overwrite)


def test_a_file_is_refused_naming_it(tmp_path: Path) -> None:
    file = tmp_path / "run"
    file.write_text("not a folder")
    with pytest.raises(RunFolderError, match=rf"paths.output_dir={file}: .*is a file"):
        check_run_folder(file, overwrite=True, key="paths.output_dir")


def test_a_folder_holding_a_run_is_refused_unless_overwrite(tmp_path: Path) -> None:
    run = finished_run(tmp_path / "run")
    with pytest.raises(RunFolderError) as refused:
        check_run_folder(run.path)
    message = str(refused.value)
    assert "\n" not in message
    assert f"hydra.run.dir={run.path}: already holds a run" in message
    for name in ("checkpoints", "metrics.json", "split.json", ".hydra/config.yaml"):
        assert name in message
    assert f"resume={run.path}" in message and "overwrite_run=true" in message
    check_run_folder(run.path, overwrite=True)


def test_each_file_of_a_run_marks_the_folder_as_taken(tmp_path: Path) -> None:
    for k, attribute in enumerate(("checkpoint_dir", "metrics_file", "split_file", "config_file")):
        path = getattr(RunDir(tmp_path / str(k)), attribute)
        path.parent.mkdir(parents=True, exist_ok=True)
        if attribute == "checkpoint_dir":
            path.mkdir()
        else:
            path.write_text("x")
        with pytest.raises(RunFolderError, match=path.name):
            check_run_folder(tmp_path / str(k))


def test_configurations_saved_for_this_job_can_be_left_out(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.config_file.parent.mkdir()
    run.config_file.write_text("seed: 1\n")  # what Hydra writes before the job starts
    check_run_folder(tmp_path, configs=False)
    run.metrics_file.write_text("{}\n")
    with pytest.raises(RunFolderError, match=r"metrics\.json"):
        check_run_folder(tmp_path, configs=False)


def test_a_sweep_folder_holding_runs_is_refused(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    check_sweep_folder(sweep)  # new
    sweep.mkdir()
    (sweep / "multirun.yaml").write_text("{}\n")
    check_sweep_folder(sweep)
    finished_run(sweep / "0")
    with pytest.raises(RunFolderError, match=rf"hydra.sweep.dir={sweep}: already holds .*0"):
        check_sweep_folder(sweep)
    check_sweep_folder(sweep, overwrite=True)
    with pytest.raises(RunFolderError, match="root"):
        check_sweep_folder(Path("/"), overwrite=True)
