"""RunDir names every file of a run folder; the configs reach the same paths."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_module
from omegaconf import open_dict

from nuclei.runs.run_dir import RunDir
from nuclei.runs.sweep import find_runs


def test_paths_of_a_run(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert run.last_checkpoint.parent == run.checkpoint_dir
    assert run.last_checkpoint.name == f"{run.last_checkpoint_stem}.ckpt"
    assert run.exception_checkpoint.parent == run.checkpoint_dir
    files = [
        run.config_file,
        run.overrides_file,
        run.run_info_file,
        run.split_file,
        run.data_report_file,
        run.metrics_file,
        run.tuned_postprocess_file,
        run.eval_metrics_file,
    ]
    assert len({f.name for f in files}) == len(files)  # no two share a name
    assert all(f.is_relative_to(tmp_path) for f in files)


def test_run_of_a_checkpoint(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert RunDir.of_checkpoint(run.last_checkpoint) == run
    loose = tmp_path / "elsewhere" / "model.ckpt"
    assert RunDir.of_checkpoint(loose) == RunDir(tmp_path / "elsewhere")


def test_eval_file_beside_a_checkpoint(tmp_path: Path) -> None:
    ckpt = RunDir(tmp_path).last_checkpoint
    assert RunDir.checkpoint_eval_file(ckpt, "val").name == f"{ckpt.stem}.val.eval.json"
    digest = RunDir.checkpoint_eval_file(ckpt, "test", "0123abcd")
    assert digest.name == f"{ckpt.stem}.test.0123abcd.eval.json"


def test_find_runs_below_a_sweep_folder(tmp_path: Path) -> None:
    for name in ("0", "1"):
        run = RunDir(tmp_path / name)
        run.overrides_file.parent.mkdir(parents=True)
        run.overrides_file.write_text("[]\n")
    (tmp_path / "not_a_run").mkdir()
    assert RunDir.find_in(tmp_path) == [RunDir(tmp_path / "0"), RunDir(tmp_path / "1")]


def test_written_records_round_trip(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "new")
    run.write_split({"train": ["b", "a"], "val": ["c"]})
    run.write_json(run.metrics_file, {"val/iou": 0.5, "epochs": 2})
    assert '"b",\n    "a"' in run.split_file.read_text()  # the split keeps its order
    assert run.metrics_file.read_text().endswith("}\n")


def test_training_callbacks_write_where_run_dir_says(tmp_path: Path) -> None:
    with initialize_config_module(version_base="1.3", config_module="nuclei.conf"):
        cfg = compose("train")
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path)
    run = RunDir(tmp_path)
    callbacks = cfg.callbacks
    assert Path(callbacks.model_checkpoint.dirpath) == run.checkpoint_dir
    assert Path(callbacks.last_checkpoint.dirpath) == run.checkpoint_dir
    assert callbacks.last_checkpoint.filename == run.last_checkpoint_stem
    assert Path(callbacks.on_exception.path) == run.exception_checkpoint


def test_sweep_runs_sort_by_number_then_name_when_names_mix(tmp_path: Path) -> None:
    for name in ("10", "2", "i3", "i10", "0"):  # a sweep extended with hydra.sweep.subdir=i${...}
        run = RunDir(tmp_path / name)
        run.overrides_file.parent.mkdir(parents=True)
        run.overrides_file.write_text("[]\n")
    assert [r.path.name for r in find_runs(tmp_path)] == ["0", "2", "10", "i10", "i3"]
