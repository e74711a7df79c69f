"""nuclei-train's start-of-run check counts a saved configuration as another run's, except
when a launcher started the run's ranks together (each saves its own copy at once)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import DictConfig

from nuclei.cli.train_checks import TrainChecks


def run_config(run_dir: Path) -> DictConfig:
    """``train.yaml`` with Hydra's own settings, its run folder set to ``run_dir``."""
    with initialize_config_module(version_base="1.3", config_module="nuclei.conf"):
        return compose("train", overrides=[f"hydra.run.dir={run_dir}"], return_hydra_config=True)


@pytest.fixture
def saved_config_only(tmp_path: Path) -> Path:
    """A run folder holding only the configuration Hydra saves for a job."""
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("seed: 42\n")
    return run_dir


@pytest.fixture(autouse=True)
def single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLURM_NTASKS", "SLURM_PROCID", "WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)


def test_a_saved_configuration_marks_the_folder_of_a_single_process_run(
    saved_config_only: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as ended:
        TrainChecks().on_run_start(run_config(saved_config_only))
    assert ended.value.code == 2
    assert "already holds a run (.hydra/config.yaml)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "launcher", [{"SLURM_NTASKS": "2", "SLURM_PROCID": "0"}, {"WORLD_SIZE": "2", "RANK": "0"}]
)
def test_rank_0_started_beside_other_ranks_accepts_their_saved_configuration(
    launcher: dict[str, str], saved_config_only: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in launcher.items():
        monkeypatch.setenv(name, value)
    TrainChecks().on_run_start(run_config(saved_config_only))


def test_rank_0_started_beside_other_ranks_still_refuses_a_finished_run(
    saved_config_only: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (saved_config_only / "metrics.json").write_text("{}\n")
    monkeypatch.setenv("SLURM_NTASKS", "2")
    monkeypatch.setenv("SLURM_PROCID", "0")
    with pytest.raises(SystemExit) as ended:
        TrainChecks().on_run_start(run_config(saved_config_only))
    assert ended.value.code == 2
    assert "already holds a run (metrics.json)" in capsys.readouterr().err
