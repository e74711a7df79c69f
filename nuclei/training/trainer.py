"""The Lightning Trainer of a run, its callbacks, loggers and checkpoint writer, and the
final scoring."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from omegaconf import DictConfig

from nuclei.files import atomic_path
from nuclei.metrics.image_rows import scores_by_kind
from nuclei.training.callbacks import ImageScores, RandomStateCheckpoint
from nuclei.training.speed import SpeedOptions


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint writer that renames a complete temporary file over the target
    (:func:`nuclei.files.atomic_path`)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        """Save ``checkpoint`` to the local ``path`` atomically (``storage_options`` unused)."""
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        with atomic_path(path) as temporary:
            torch.save(checkpoint, temporary)


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a dict-like config group (callbacks, loggers)."""
    if not group:
        return []
    return [instantiate(entry) for entry in group.values() if entry and "_target_" in entry]


def build_trainer(cfg: DictConfig, extra_callbacks: list[Callback]) -> L.Trainer:
    """The run's Trainer: ``cfg.trainer`` with the ``callbacks`` and ``logger`` groups,
    the random-state callback, ``extra_callbacks`` and what the speed options need."""
    loggers: list[Logger] = instantiate_group(cfg.get("logger"))
    callbacks = [
        *instantiate_group(cfg.get("callbacks")),
        RandomStateCheckpoint(),
        *extra_callbacks,
    ]
    if not loggers:  # LearningRateMonitor refuses to run without a logger
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    speed = SpeedOptions.from_config(cfg.get("speed"))
    return instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, **speed.trainer_kwargs()
    )


def best_model_path(trainer: L.Trainer) -> str | None:
    """The ``best_model_path`` of the trainer's ModelCheckpoint that monitors a metric, if any."""
    for callback in trainer.checkpoint_callbacks:
        if (
            isinstance(callback, ModelCheckpoint)
            and callback.monitor is not None
            and callback.best_model_path
        ):
            return callback.best_model_path
    return None


def score_best_checkpoint(
    trainer: L.Trainer, task: L.LightningModule, datamodule: Any
) -> tuple[dict[str, float], str | None]:
    """Validate (and test, where there is a test split) the best checkpoint after ``fit``.

    The figures stay out of the training curves (no logger while scoring). Beside the pooled
    metrics come each image kind's (``val/map_tissue``...: see
    :func:`nuclei.metrics.image_rows.scores_by_kind`) where the instance metric scored the
    images. Returns the metrics and the checkpoint's path (None: the last weights were scored).
    """
    best = best_model_path(trainer)
    loggers = trainer.loggers
    trainer.loggers = []
    scores = ImageScores()
    trainer.callbacks.append(scores)
    try:
        results = trainer.validate(task, datamodule=datamodule, ckpt_path=best, verbose=False)
        results[0].update(scores_by_kind(scores.rows, "val"))
        if datamodule.has_test_split:
            scores.rows = []
            tested = trainer.test(task, datamodule=datamodule, ckpt_path=best, verbose=False)
            results[0].update(tested[0])
            results[0].update(scores_by_kind(scores.rows, "test"))
    finally:
        trainer.callbacks.remove(scores)
        trainer.loggers = loggers
    return {key: float(value) for key, value in results[0].items()}, best


def log_final_hyperparameters(
    trainer: L.Trainer, config: dict[str, Any], final: dict[str, float]
) -> None:
    """Write the run's config with its final metrics (TensorBoard's HPARAMS row)."""
    metrics = {f"hp/{key.replace('/', '_')}": value for key, value in final.items()}
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(config, metrics=metrics)
        else:  # e.g. CSVLogger: no metrics argument
            logger.log_hyperparams(config)
            logger.log_metrics(metrics)
        logger.finalize("success")
