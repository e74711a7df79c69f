"""Which checkpoints a file, run folder, sweep folder or list names; which runs may be
averaged into an ensemble."""

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from nuclei.runs.checkpoint import CheckpointError, Run
from nuclei.runs.members import best_checkpoint, check_same_recipe, checkpoints_of
from nuclei.runs.run_dir import RunDir


def fake_run(folder: Path, best: str | None = "epoch003-iou0.8000.ckpt") -> Path:
    """A run folder with last.ckpt and (when ``best``) a best checkpoint named by metrics.json
    as the machine that trained wrote it (another absolute path)."""
    checkpoints = folder / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "last.ckpt").write_bytes(b"last")
    if best:
        (checkpoints / best).write_bytes(b"best")
        record = {"best_checkpoint": f"/elsewhere/{folder.name}/checkpoints/{best}"}
        (folder / "metrics.json").write_text(json.dumps(record))
    return folder


def test_best_checkpoint_is_found_in_the_run_folder(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "run")
    assert best_checkpoint(RunDir(run)) == run / "checkpoints" / "epoch003-iou0.8000.ckpt"
    plain = fake_run(tmp_path / "plain", best=None)
    assert best_checkpoint(RunDir(plain)) == plain / "checkpoints" / "last.ckpt"
    (tmp_path / "empty" / "checkpoints").mkdir(parents=True)
    with pytest.raises(CheckpointError, match="no best or last checkpoint"):
        best_checkpoint(RunDir(tmp_path / "empty"))


def test_file_run_folder_sweep_and_list(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    runs = [fake_run(sweep / str(i)) for i in (0, 1, 2, 10)]
    (sweep / "multirun.yaml").write_text("{}")
    best = [run / "checkpoints" / "epoch003-iou0.8000.ckpt" for run in runs]
    assert checkpoints_of(best[0]) == [best[0]]
    assert checkpoints_of(runs[1]) == [best[1]]
    assert checkpoints_of(sweep) == best  # natural order: 10 after 2
    assert checkpoints_of([str(best[2]), runs[0]]) == [best[2], best[0]]


def test_bad_specs_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="checkpoint file not found"):
        checkpoints_of(tmp_path / "missing.ckpt")
    (tmp_path / "nothing").mkdir()
    with pytest.raises(CheckpointError, match="nothing: neither a checkpoint"):
        checkpoints_of(tmp_path / "nothing")
    with pytest.raises(CheckpointError, match="no checkpoint given"):
        checkpoints_of([])


def run_with(tmp_path: Path, name: str, mode: str = "resize", target: str = "binary") -> Run:
    config = OmegaConf.create(
        {
            "data": {"size": {"mode": mode, "image_size": 128}, "intensity": {"normalize": "none"}},
            "task": {"target": target},
        }
    )
    return Run(tmp_path / f"{name}.ckpt", {}, config, RunDir(tmp_path))


def test_ensemble_members_must_share_how_images_meet_the_network(tmp_path: Path) -> None:
    check_same_recipe([run_with(tmp_path, "a"), run_with(tmp_path, "b")])
    with pytest.raises(ValueError, match=r"c\.ckpt: data\.size\.mode is crop"):
        check_same_recipe([run_with(tmp_path, "a"), run_with(tmp_path, "c", mode="crop")])
    with pytest.raises(ValueError, match=r"d\.ckpt: task\.target is border"):
        check_same_recipe([run_with(tmp_path, "a"), run_with(tmp_path, "d", target="border")])
