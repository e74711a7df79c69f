"""Same config, same seed -> same metrics; every run records what produced it."""

import json
import subprocess
import sys
from pathlib import Path

import torch
from omegaconf import open_dict

import nuclei
from nuclei.cli.train import train
from nuclei.runs.provenance import PROJECT_DIR, git_commit, run_info

#: Keys of metrics.json that may differ between identical runs (timing, run folder).
RUN_SPECIFIC = {"wall_time_s", "best_checkpoint"}


def run_twice(train_config) -> tuple[dict, dict]:
    results = []
    for name in ("first", "second"):
        cfg = train_config("trainer.max_epochs=2", "task.map_every_n_epochs=1")
        with open_dict(cfg):
            cfg.paths.output_dir = str(Path(cfg.paths.output_dir).parent / name)
        train(cfg)
        results.append(json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text()))
    return results[0], results[1]


def test_identical_runs_give_identical_metrics_json(train_config) -> None:
    first, second = run_twice(train_config)
    assert set(first) == set(second)
    assert "val/map" in first and "val/iou" in first
    for key in set(first) - RUN_SPECIFIC:
        assert first[key] == second[key], key  # exactly equal, not approximately
    assert Path(first["best_checkpoint"]).name == Path(second["best_checkpoint"]).name


def test_run_records_versions_commit_command_and_host(train_config) -> None:
    cfg = train_config("trainer.max_epochs=1", "task.map_every_n_epochs=0")
    train(cfg)
    info = json.loads((Path(cfg.paths.output_dir) / "run_info.json").read_text())
    assert info["project_version"] == nuclei.__version__
    assert info["python"] == sys.version.split()[0]
    assert info["packages"]["torch"] == torch.__version__.split("+")[0]
    assert info["torch_build"]["version"] == torch.__version__
    assert info["packages"]["lightning"] and info["packages"]["hydra-core"]
    assert info["command"][0] == sys.executable and info["hostname"] and info["started_at"]
    if (PROJECT_DIR / ".git").exists():
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_DIR, capture_output=True, text=True
        ).stdout.strip()
        assert info["git_commit"] == head and len(head) == 40
    else:
        assert info["git_commit"] is None


def test_git_commit_is_none_outside_a_checkout(tmp_path: Path) -> None:
    assert git_commit(tmp_path) is None
    assert run_info()["packages"]["nuclei"] == nuclei.__version__


def test_a_run_is_reproduced_from_its_saved_config_alone(
    synthetic_root: Path, tmp_path: Path
) -> None:
    """What the README tells a colleague: rerun from <run>/.hydra/config.yaml, same metrics."""
    train_module = [sys.executable, "-m", "nuclei.cli.train"]
    original, rerun = tmp_path / "original", tmp_path / "rerun"
    first = [
        *train_module,
        f"data.source.root={synthetic_root}",
        "trainer=cpu",
        "trainer.max_epochs=2",
        "data.size.image_size=32",
        "data.loader.batch_size=4",
        "data.source.decode_workers=1",
        "model.depth=2",
        "model.base_channels=4",
        "optimizer.lr=3e-3",
        "seed=7",
        "callbacks.progress_bar=null",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={original}",
    ]
    again = [
        *train_module,
        f"--config-path={original / '.hydra'}",
        "--config-name=config",
        f"hydra.run.dir={rerun}",
    ]
    for command in (first, again):
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    expected = json.loads((original / "metrics.json").read_text())
    reproduced = json.loads((rerun / "metrics.json").read_text())
    assert reproduced["seed"] == 7 and reproduced["epochs"] == 2
    for key in set(expected) - RUN_SPECIFIC:
        assert reproduced[key] == expected[key], key
