"""One log line per training epoch, so that ``train.log`` (or a SLURM/nohup log) can be followed.

The Rich progress bar writes to the terminal only; :class:`EpochLog` logs through the
``logging`` module at INFO, which Hydra sends to the console and to the run's ``train.log``::

    epoch 3/6  step 268  train/loss 0.0812  val/loss 0.0701  val/iou 0.8345  lr 1.2e-03
      41.8 s/epoch  ETA 2m06s      (one line in the log)

It only reads what the run has already computed (logged metrics, the optimizer's learning
rate, the clock): no random numbers, no forward pass, so no figure of the run changes.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence

import lightning as L
from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)

#: The metrics shown, in order, when the run logged them (validation ones: if this epoch did).
DEFAULT_METRICS = ("train/loss", "val/loss", "val/iou", "val/map")


def format_duration(seconds: float) -> str:
    """A duration as ``41s``, ``2m06s`` or ``3h05m``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def metric_value(metrics: Mapping[str, object], name: str) -> float | None:
    """``name`` from Lightning's callback metrics (its epoch mean when also logged per step)."""
    value = metrics.get(f"{name}_epoch", metrics.get(name))
    if value is None:
        return None
    value = float(value.item() if hasattr(value, "item") else value)  # type: ignore[union-attr]
    return value if math.isfinite(value) else None


def learning_rate(trainer: L.Trainer) -> float | None:
    """The learning rate of the first optimizer's first parameter group, if there is one."""
    optimizers = trainer.optimizers
    return float(optimizers[0].param_groups[0]["lr"]) if optimizers else None


class EpochLog(Callback):
    """Logs a line per epoch: epoch, step, ``metrics``, learning rate, s/epoch and ETA.

    Only the global-zero process logs. The ETA is the mean time of the epochs run in this
    process times the epochs left (an upper bound when early stopping ends the run sooner);
    runs bounded by steps rather than epochs show no ETA.
    """

    def __init__(self, metrics: Sequence[str] = DEFAULT_METRICS) -> None:
        self.metrics = tuple(metrics)
        self._epoch_started = 0.0
        self._epoch_seconds: list[float] = []
        self._before_validation: dict[str, object] = {}
        self._validated: set[str] = set()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Start the epoch's clock."""
        self._epoch_started = time.perf_counter()
        self._validated = set()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Remember the figures so far: those this validation does not log again are stale."""
        self._before_validation = dict(trainer.callback_metrics)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Note which validation figures this epoch logged (not the sanity check's)."""
        if not trainer.sanity_checking:
            before = self._before_validation
            fresh = {k for k, v in trainer.callback_metrics.items() if before.get(k) is not v}
            self._validated |= fresh

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Log the epoch's line."""
        self._epoch_seconds.append(time.perf_counter() - self._epoch_started)
        if trainer.is_global_zero:
            log.info("%s", self.line(trainer))

    def line(self, trainer: L.Trainer) -> str:
        """The line of the epoch that just ended."""
        epoch, max_epochs = trainer.current_epoch + 1, trainer.max_epochs
        parts = [
            f"epoch {epoch}/{max_epochs}" if max_epochs and max_epochs > 0 else f"epoch {epoch}"
        ]
        parts.append(f"step {trainer.global_step}")
        metrics = trainer.callback_metrics
        for name in self.metrics:
            value = metric_value(metrics, name)
            if value is not None and (name in self._validated or not name.startswith("val/")):
                parts.append(f"{name} {value:.4f}")
        lr = learning_rate(trainer)
        if lr is not None:
            parts.append(f"lr {lr:.1e}")
        per_epoch = sum(self._epoch_seconds) / len(self._epoch_seconds)
        parts.append(f"{per_epoch:.1f} s/epoch")
        if max_epochs and max_epochs > 0:
            parts.append(f"ETA {format_duration(per_epoch * max(0, max_epochs - epoch))}")
        return "  ".join(parts)
