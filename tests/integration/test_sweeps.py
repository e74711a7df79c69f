"""Sweeps: an Optuna search that trains, the SLURM launcher config, multirun jobs under DDP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from support.training import (
    run_multirun,
)

from nuclei.training.ddp_relaunch import job_command_line


def compose_with_hydra(*overrides: str) -> DictConfig:
    with initialize_config_module(version_base="1.3", config_module="nuclei.conf"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def test_two_trial_optuna_search_trains_and_reports_the_best(
    synthetic_root: Path, tmp_path: Path
) -> None:
    sweep = tmp_path / "sweep"
    done = run_multirun(
        sweep, synthetic_root, tmp_path, "hparams_search=optuna", "hydra.sweeper.n_trials=2"
    )
    assert done.returncode == 0, done.stderr[-4000:]

    assert sorted(p.name for p in sweep.iterdir()) == ["0", "1", "optimization_results.yaml"]
    ious, rates = {}, {}
    for trial in ("0", "1"):
        metrics = json.loads((sweep / trial / "metrics.json").read_text())
        ious[trial] = metrics["val/iou"]
        overrides = OmegaConf.load(sweep / trial / ".hydra" / "overrides.yaml")
        (rate,) = [float(o.split("=")[1]) for o in overrides if o.startswith("optimizer.lr=")]
        assert 1e-4 <= rate <= 1e-2
        assert "model.base_channels=8" in overrides and "data.loader.batch_size=4" in overrides
        rates[trial] = rate
    assert rates["0"] != rates["1"]
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    assert set(results.best_params) == {"optimizer.lr"}  # fixed overrides left the space
    assert results.best_value == pytest.approx(max(ious.values()))
    best = max(ious, key=ious.get)
    assert results.best_params["optimizer.lr"] == pytest.approx(rates[best])
    assert not list(tmp_path.glob("outputs"))  # nothing outside the sweep folder


def test_optuna_search_config_maximises_val_iou_and_implies_multirun() -> None:
    cfg = compose_with_hydra("hparams_search=optuna", "hydra.sweeper.n_trials=7")
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper")
    assert str(sweeper.direction) in ("maximize", "Direction.maximize")
    assert sweeper.n_trials == 7
    assert cfg.hydra.mode == RunMode.MULTIRUN
    assert set(sweeper.params) == {"optimizer.lr", "model.base_channels", "data.loader.batch_size"}
    assert sweeper.params["optimizer.lr"].startswith("tag(log")
    assert cfg.callbacks.model_checkpoint.monitor == "val/iou"  # what the objective reads


@pytest.mark.parametrize(
    ("overrides", "tasks", "nodes"),
    [
        ([], 1, 1),
        (
            [
                "trainer=ddp",
                "trainer.devices=4",
                "trainer.num_nodes=2",
                "hydra.launcher.tasks_per_node=4",
                "hydra.launcher.nodes=2",
            ],
            4,
            2,
        ),
    ],
    ids=["one-gpu", "ddp-2x4"],
)
def test_slurm_launcher_composes_without_slurm(
    overrides: list[str], tasks: int, nodes: int, tmp_path: Path
) -> None:
    cfg = compose_with_hydra(
        "hydra/launcher=slurm", f"hydra.sweep.dir={tmp_path}", "hydra.job.name=train", *overrides
    )
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"] == (
        "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    )
    assert launcher["tasks_per_node"] == tasks
    assert launcher["gpus_per_node"] == tasks  # one GPU per task (= DDP rank)
    assert launcher["nodes"] == nodes
    assert launcher["submitit_folder"] == f"{tmp_path}/.submitit/%j"
    assert launcher["timeout_min"] > 0 and launcher["cpus_per_task"] > 0
    if tasks > 1:  # Lightning's SLURM environment wants devices == tasks per node
        assert cfg.trainer.devices == tasks and cfg.trainer.num_nodes == nodes
        assert cfg.trainer.strategy == "ddp"
    # The launcher object can be built here; only a sweep (-m) would submit anything.
    built = instantiate(cfg.hydra.launcher)
    assert type(built).__name__ == "SlurmLauncher"


def test_a_multirun_job_is_repeated_as_a_single_run_of_its_own_overrides() -> None:
    cfg = compose_with_hydra(
        "hparams_search=optuna",
        "optimizer.lr=0.001",
        "trainer=ddp_cpu",
        "hydra.sweep.dir=/tmp/sweep",
        "hydra/launcher=slurm",
        "hydra.mode=MULTIRUN",
        "hydra.job.chdir=false",
    )
    HydraConfig.instance().set_config(cfg)
    try:
        command = job_command_line()
    finally:
        HydraConfig.instance().cfg = None
    assert command == [
        "hydra.job.chdir=false",
        "hparams_search=optuna",
        "optimizer.lr=0.001",
        "trainer=ddp_cpu",
        "hydra.mode=RUN",  # last: hparams_search=optuna alone would imply -m
    ]
