"""Train a nuclei segmentation model: ``nuclei-train`` / ``python -m nuclei.cli.train``.

Hydra composes ``conf/train.yaml``; see ``nuclei-train --help`` for the groups and options.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from nuclei.cli.metrics_table import print_metrics, write_metrics_json
from nuclei.runs.checkpoint import build_task
from nuclei.runs.provenance import write_run_info
from nuclei.runs.resume import resume_config
from nuclei.training.callbacks.random_state import RandomStateCheckpoint
from nuclei.training.ddp_relaunch import ddp_launch_of_this_job
from nuclei.training.speed import SpeedOptions, speed_up_task

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
