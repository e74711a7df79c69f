"""Train a nuclei segmentation model: ``nuclei-train`` / ``python -m nuclei.train``.

Hydra composes ``conf/train.yaml``; see ``nuclei-train --help`` for the groups and options.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.strategies.launchers import _SubprocessScriptLauncher
from omegaconf import DictConfig, OmegaConf, read_write

from nuclei.provenance import write_run_info
from nuclei.reporting import print_metrics, write_metrics_json
from nuclei.resume import RandomStateCheckpoint, resume_config
from nuclei.runs import build_task
from nuclei.speed import SpeedOptions, speed_up_task

log = logging.getLogger(__name__)

OBJECTIVE = "val/iou"


def run_directory(cfg: DictConfig) -> Path:
    """The run's output folder: Hydra's run dir, or ``paths.output_dir`` outside Hydra."""
    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path(cfg.paths.output_dir)


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a dict-like config group (callbacks, loggers)."""
    if not group:
        return []
    return [instantiate(entry) for entry in group.values() if entry and "_target_" in entry]


def best_checkpoint(callbacks: list[Callback]) -> str | None:
    """Path of the best checkpoint of a ModelCheckpoint that monitors a metric, if any."""
    for callback in callbacks:
        if (
            isinstance(callback, ModelCheckpoint)
            and callback.monitor is not None
            and callback.best_model_path
        ):
            return callback.best_model_path
    return None


def log_final_hyperparameters(
    loggers: list[Logger], config: dict[str, Any], final: dict[str, float]
) -> None:
    """Write the run's config with its final metrics (TensorBoard's HPARAMS row)."""
    metrics = {f"hp/{key.replace('/', '_')}": value for key, value in final.items()}
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(config, metrics=metrics)
        else:  # e.g. CSVLogger: no metrics argument
            logger.log_hyperparams(config)
            logger.log_metrics(metrics)
        logger.finalize("success")


# What Lightning's script launcher leaves in the launching process's environment (and
# torch.distributed's process group): a later job of the same sweep would otherwise take
# LOCAL_RANK as a sign that its processes exist already and wait for them forever.
_LAUNCH_ENVIRONMENT = (
    "MASTER_ADDR",
    "MASTER_PORT",
    "NODE_RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "OMP_NUM_THREADS",
)
# Overrides that belong to the sweep, not to one of its jobs (Lightning adds its own
# hydra.run.dir, hydra.job.name and hydra.output_subdir to the command of each extra rank).
_SWEEP_OVERRIDES = (
    "hydra.mode",
    "hydra.sweep",  # also hydra.sweeper.*
    "hydra/sweeper",
    "hydra.launcher",
    "hydra/launcher",
    "hydra.run.dir",
    "hydra.job.name",
    "hydra.output_subdir",
)
# How long a finished job waits for its extra ranks to exit before it kills them.
_RANK_EXIT_TIMEOUT_S = 120


def relaunches_script(trainer: L.Trainer) -> bool:
    """Whether Lightning will start the trainer's extra processes by re-running the script."""
    launcher = trainer.strategy.launcher
    return (
        isinstance(launcher, _SubprocessScriptLauncher)
        and launcher.num_processes > 1
        and not launcher.cluster_environment.creates_processes_externally
    )


def job_command_line() -> list[str]:
    """Overrides that repeat the current Hydra multirun job as a single run (``hydra.mode=RUN``)."""
    overrides = HydraConfig.get().overrides
    hydra_overrides = [
        o for o in overrides.hydra if not o.lstrip("~+").startswith(_SWEEP_OVERRIDES)
    ]
    return [*hydra_overrides, *overrides.task, "hydra.mode=RUN"]


@contextmanager
def ddp_launch_of_this_job(trainer: L.Trainer) -> Iterator[None]:
    """Let a DDP job of a multirun (``-m``) start its extra ranks as this job alone.

    Lightning starts rank k > 0 by re-running the script with ``sys.argv`` plus
    ``hydra.run.dir=<HydraConfig run.dir>``. Under ``-m`` that argv is the whole sweep, and
    run.dir is not the job's folder, so every extra rank would run every job of the sweep. While
    this job runs, argv holds just its overrides (``hydra.mode=RUN``, so an hparams_search that
    implies ``-m`` is not restarted either) and run.dir its output folder: each extra rank runs
    exactly the job that rank 0 runs, in the same folder, as a single DDP run does. When the job
    ends, it waits for those ranks, closes the process group and restores the environment, so
    that the next job starts its own.

    Why not ``ddp_spawn`` under ``-m``: it pickles the task, datamodule and callbacks into every
    fit, validate and test call (each decoding the data again, ruling out torch.compile'd
    networks), and hands back only rank 0's weights, best path and callback metrics: the main
    process's datamodule, epoch and step counters never see the run. The relaunch keeps the code
    path of a single DDP run, the one tested against a one-process run.
    """
    if (
        not HydraConfig.initialized()
        or HydraConfig.get().mode != RunMode.MULTIRUN
        or not relaunches_script(trainer)
    ):
        yield
        return
    hydra_config = HydraConfig.get()
    saved_argv = sys.argv
    saved_run_dir = OmegaConf.to_container(hydra_config.run)["dir"]  # unresolved
    saved_environment = {key: os.environ.get(key) for key in _LAUNCH_ENVIRONMENT}
    saved_threads = torch.get_num_threads()
    sys.argv = [sys.argv[0], *job_command_line()]
    with read_write(hydra_config.run):
        hydra_config.run.dir = hydra_config.runtime.output_dir
    succeeded = False
    try:
        yield
        succeeded = True
    finally:
        sys.argv = saved_argv
        with read_write(hydra_config.run):
            hydra_config.run.dir = saved_run_dir
        # After a failure Lightning (or its child-process observer) ends the extra ranks.
        if succeeded:
            for process in trainer.strategy.launcher.procs:
                try:
                    process.wait(timeout=_RANK_EXIT_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    log.warning("Rank process %d did not exit; killing it", process.pid)
                    process.kill()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for key, value in saved_environment.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        torch.set_num_threads(saved_threads)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit the configured model, validate its best checkpoint, write ``metrics.json``."""
    started = time.perf_counter()
    if cfg.get("resume"):
        cfg = resume_config(cfg.resume)
        log.info("Resuming %s from %s", cfg.resume, cfg.ckpt_path)
    L.seed_everything(cfg.seed, workers=True)
    run_dir = run_directory(cfg)
    if HydraConfig.initialized():  # every DDP rank logs it: each must run the same job
        log.info("Overrides: %s", " ".join(HydraConfig.get().overrides.task) or "none")

    datamodule = instantiate(cfg.data)
    task = build_task(cfg)
    task.run_config = OmegaConf.to_container(cfg, resolve=True)
    speed = SpeedOptions.from_config(cfg.get("speed"))
    speed_up_task(task, speed)

    loggers: list[Logger] = instantiate_group(cfg.get("logger"))
    callbacks = [*instantiate_group(cfg.get("callbacks")), RandomStateCheckpoint()]
    if not loggers:  # LearningRateMonitor refuses to run without a logger
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, **speed.trainer_kwargs()
    )
    with ddp_launch_of_this_job(trainer):
        if trainer.is_global_zero:
            write_run_info(run_dir)

        trainer.fit(task, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        if trainer.is_global_zero:
            datamodule.write_split(run_dir / "split.json")
            datamodule.write_data_report(run_dir / "data_report.json")

        best = best_checkpoint(callbacks)
        # Final figures come from the best checkpoint; keep them out of the training curves.
        trainer.loggers = []
        results = trainer.validate(task, datamodule=datamodule, ckpt_path=best, verbose=False)
        if datamodule.has_test_split:
            tested = trainer.test(task, datamodule=datamodule, ckpt_path=best, verbose=False)
            results[0].update(tested[0])
        trainer.loggers = loggers
        final = {key: float(value) for key, value in results[0].items()}

        summary: dict[str, Any] = {
            **final,
            "best_checkpoint": best,
            "epochs": trainer.current_epoch,
            "global_step": trainer.global_step,
            "wall_time_s": round(time.perf_counter() - started, 1),
            "seed": cfg.seed,
        }
        if trainer.is_global_zero:
            log_final_hyperparameters(loggers, task.run_config, final)
            write_metrics_json(run_dir / "metrics.json", summary)
            print_metrics(final, title="Final metrics of the best checkpoint")
            log.info("Best checkpoint: %s", best or "none saved (last weights used)")
            log.info("Run directory: %s", run_dir)
    return summary


@hydra.main(version_base="1.3", config_path="pkg://nuclei.conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the objective (val/iou) for hyperparameter sweepers."""
    summary = train(cfg)
    return summary.get(OBJECTIVE)


if __name__ == "__main__":
    main()
