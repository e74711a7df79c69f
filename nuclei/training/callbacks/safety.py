"""Training safety callbacks: a stop on non-finite loss, a checkpoint when a stage fails.

:class:`StopOnNonFiniteLoss` stops training with a clear message at the first NaN or infinite
training loss, before the backward pass, so the weights are still the last good ones;
:class:`CheckpointOnException` (in ``conf/callbacks/default.yaml``) then saves them, as it does
for any exception mid-run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback


class CheckpointOnException(Callback):
    """Save the weights to ``path`` when fit, validate or test fails.

    Lightning's own ``OnExceptionCheckpoint`` also does this, but its presence makes every
    ``fit(ckpt_path=None)`` look for a "last" checkpoint to resume from: a run started in a
    folder holding an older run's checkpoints would silently continue that run. Here
    resuming stays explicit (``resume=`` or ``ckpt_path=``). The file is removed once a
    later stage ends normally, so it never outlives the failure it records.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        """Write the current state (every process calls this; rank 0 writes)."""
        trainer.save_checkpoint(self.path)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """After a stage that ended normally, remove a file left by an earlier failure."""
        if trainer.is_global_zero and not trainer.interrupted:
            self.path.unlink(missing_ok=True)


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


class StopOnNonFiniteLoss(Callback):
    """Raise :class:`NonFiniteLossError` at the first non-finite training loss.

    The check runs before the backward pass, so the optimizer never steps on it, and the
    module's buffers (batch-norm running statistics, which the forward pass has already
    updated from the bad batch) are put back as they were before the step: the weights left
    for :class:`CheckpointOnException` are those of the last good step. Under DDP the decision is
    shared, so every process stops at the same step.
    """

    def __init__(self) -> None:
        super().__init__()
        self._buffers_before_step: list[torch.Tensor] = []

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Copy the buffers (a few kilobytes of normalisation statistics) before the step."""
        self._buffers_before_step = [b.detach().clone() for b in pl_module.buffers()]

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor
    ) -> None:
        """Stop if ``loss`` (on any process) is not finite."""
        bad = not bool(torch.isfinite(loss.detach()).all())
        if not trainer.strategy.reduce_boolean_decision(bad, all=False):
            return
        with torch.no_grad():
            for buffer, before in zip(pl_module.buffers(), self._buffers_before_step, strict=True):
                buffer.copy_(before)
        kept = [c.path for c in trainer.callbacks if isinstance(c, CheckpointOnException)]
        where = f"are kept in {kept[0]}" if kept else "are those of the last good step"
        raise NonFiniteLossError(
            f"train/loss is {loss.detach().float().item() if bad else 'non-finite'} "
            f"at epoch {trainer.current_epoch}, step {trainer.global_step}: training stopped. "
            f"The weights before this step {where}. "
            "Common causes: a learning rate too high (optimizer.lr), a diverging "
            "precision setting (trainer.precision), or a corrupt input image."
        )
