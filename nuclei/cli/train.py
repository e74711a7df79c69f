"""Train a nuclei segmentation model: ``nuclei-train`` / ``python -m nuclei.cli.train``.

Hydra composes ``conf/train.yaml``; see ``nuclei-train --help`` for the groups and options.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from nuclei.cli.app import App, command, user_errors
from nuclei.cli.metrics_table import print_kinds, print_metrics
from nuclei.runs.checkpoint import StoreRunConfig, read_checkpoint
from nuclei.runs.provenance import write_run_info
from nuclei.runs.run_dir import RunDir
from nuclei.runs.run_folder import RunFolderError, check_job_folder, resume_config
from nuclei.training.config_checks import TrainingConfigError, check_training_config
from nuclei.training.ddp_relaunch import ddp_launch_of_this_job
from nuclei.training.objective import Objective
from nuclei.training.trainer import build_trainer, log_final_hyperparameters, score_best_checkpoint

log = logging.getLogger(__name__)

APP = App(name="nuclei-train", config_name="train")


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit the configured model, score its best checkpoint, write the run's files."""
    started = time.perf_counter()
    trust = bool(cfg.get("trust_checkpoint"))
    if cfg.get("resume"):
        cfg = resume_config(cfg.resume, trust=trust)
        log.info("Resuming %s from %s", cfg.resume, cfg.ckpt_path)
    elif cfg.get("ckpt_path"):  # refuse a foreign or broken file before anything is built
        read_checkpoint(cfg.ckpt_path, trust=trust, mmap=True)
    check_training_config(cfg)  # before any data is read (and, without Hydra, any file written)
    check_job_folder(cfg)
    L.seed_everything(cfg.seed, workers=True)
    run_dir = RunDir.current(cfg)
    if HydraConfig.initialized():  # every DDP rank logs it: each must run the same job
        log.info("Overrides: %s", " ".join(HydraConfig.get().overrides.task) or "none")

    datamodule = instantiate(cfg.data)
    task = instantiate(cfg.task)
    trainer = build_trainer(cfg, extra_callbacks=[StoreRunConfig(cfg)])
    with ddp_launch_of_this_job(trainer):
        if trainer.is_global_zero:
            write_run_info(run_dir)
        trainer.fit(
            task, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=not trust
        )
        if trainer.is_global_zero:
            run_dir.write_split(datamodule.split_record())
            run_dir.write_data_report(datamodule.data_report())
        final, best = score_best_checkpoint(trainer, task, datamodule)
        summary: dict[str, Any] = {
            **final,
            "best_checkpoint": best,
            "epochs": trainer.current_epoch,
            "global_step": trainer.global_step,
            "wall_time_s": round(time.perf_counter() - started, 1),
            "seed": cfg.seed,
        }
        if trainer.is_global_zero:
            log_final_hyperparameters(trainer, OmegaConf.to_container(cfg, resolve=True), final)
            run_dir.write_json(run_dir.metrics_file, summary)
            print_metrics(final, title="Final metrics of the best checkpoint")
            print_kinds(final, "val", title="Validation split by image kind")
            log.info("Best checkpoint: %s", best or "none saved (last weights used)")
            log.info("Run directory: %s", run_dir.path)
    return summary


@hydra.main(version_base="1.3", config_path="pkg://nuclei.conf", config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    with user_errors(APP.name, RunFolderError, TrainingConfigError):
        summary = train(cfg)
    return summary.get(Objective.of(cfg).metric)


main = command(
    APP, _hydra_main, "returns the objective's final value (for hyperparameter sweepers)."
)


if __name__ == "__main__":
    main()
