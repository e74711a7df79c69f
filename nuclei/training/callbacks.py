"""The Lightning callbacks a training run's Trainer runs (``conf/callbacks/default.yaml``).

- Safety: :class:`StopOnNonFiniteLoss` stops training with a clear message at the first NaN
  or infinite training loss, before the backward pass, so the weights are still the last
  good ones; :class:`CheckpointOnException` then saves them, as it does for any exception
  mid-run.
- Random states: :class:`RandomStateCheckpoint` stores the python, numpy, torch and
  augmentation generators with each checkpoint and puts them back on resume: on the CPU with
  ``data.loader.num_workers=0`` a resumed run draws the same shuffles and augmentations as
  one that was never stopped.
- Epoch log: :class:`EpochLog` writes one log line per training epoch, so that ``train.log``
  (or a SLURM/nohup log) can be followed. The Rich progress bar writes to the terminal only;
  this line goes through the ``logging`` module at INFO, which Hydra sends to the console
  and to the run's ``train.log``::

      epoch 3/6  step 268  train/loss 0.0812  val/loss 0.0701  val/iou 0.8345  lr 1.2e-03
        41.8 s/epoch  ETA 2m06s      (one line in the log)

  It only reads what the run has already computed (logged metrics, the optimizer's learning
  rate, the clock): no random numbers, no forward pass, so no figure of the run changes.
- Prediction grid: :class:`PredictionGrid` logs validation images, their truth and the
  predictions (input, truth, prediction per row) as a TensorBoard image grid.

- Image scores: :class:`ImageScores` keeps the per-image DSB scores of a validation or test
  epoch (the task's instance metric's rows, gathered from every process, each image once)
  with where each image comes from (``source``: the synthetic family, else the folder the
  split was read from) and its ``kind`` (fluorescence, tissue, brightfield), for a table of
  where a model fails. Nothing is computed twice: the metric scores the images anyway.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from torchvision.utils import make_grid

from nuclei.data.loading import locate_test_split
from nuclei.metrics.dsb import DSBInstanceMetric
from nuclei.synthetic import image_id, plan_sample

log = logging.getLogger(__name__)


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


#: Checkpoint entry holding the random-number generator states.
RNG_KEY = "nuclei_rng_states"


def _train_transform(trainer: L.Trainer) -> Any:
    """The training augmentation (an albumentations ``Compose``) of the data module, if any."""
    dataset = getattr(trainer.datamodule, "train_dataset", None)
    return getattr(dataset, "transform", None)


def _augmentation_nodes(transform: Any) -> list[Any]:
    """An albumentations pipeline and every transform in it, depth first.

    With ``Compose(seed=...)`` each transform holds its own numpy and python generators
    (seeded alike), so each one's state must be saved, not only the pipeline's.
    """
    if transform is None or not hasattr(transform, "py_random"):
        return []
    nodes = [transform]
    for child in getattr(transform, "transforms", []):
        nodes += _augmentation_nodes(child)
    return nodes


class RandomStateCheckpoint(Callback):
    """Save the python, numpy, torch and augmentation generators with each checkpoint and
    restore them on resume: shuffling and augmentation continue as if never stopped."""

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Record the generator states in the checkpoint (plain types: weights_only loads)."""
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        states: dict[str, Any] = {
            "python": random.getstate(),
            "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
            "torch": torch.get_rng_state(),
        }
        states["augmentation"] = [
            [node.random_generator.bit_generator.state, node.py_random.getstate()]
            for node in _augmentation_nodes(_train_transform(trainer))
        ]
        checkpoint[RNG_KEY] = states

    def __init__(self) -> None:
        super().__init__()
        self._pending: dict[str, Any] | None = None

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Keep the recorded states to put back when training starts (see on_train_start)."""
        self._pending = checkpoint.get(RNG_KEY)
        if not self._pending:
            log.warning("The checkpoint holds no random states: the resumed run will differ")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Put the recorded states back once the sanity check and loader setup are done."""
        states, self._pending = self._pending, None
        if not states:
            return
        random.setstate(_as_tuple(states["python"]))
        kind, keys, pos, has_gauss, cached = states["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(states["torch"])
        # Lightning (2.6) makes the first epoch's loader iterator in FitLoop.setup_data, before
        # this hook, and every later one at its epoch's start; making one draws a base seed
        # from torch's generator. Draw it again from the restored state, as an uninterrupted
        # run did for this epoch, so the sampler's shuffle draw that follows is the same.
        torch.empty((), dtype=torch.int64).random_()
        nodes = _augmentation_nodes(_train_transform(trainer))
        saved = states.get("augmentation", [])
        if len(saved) != len(nodes):
            log.warning("The augmentation changed since the checkpoint: its random state is lost")
            return
        for node, (numpy_state, python_state) in zip(nodes, saved, strict=True):
            node.random_generator.bit_generator.state = numpy_state
            node.py_random.setstate(_as_tuple(python_state))


def _as_tuple(state: Any) -> tuple:
    """A ``random.getstate()`` value, which checkpoint loading may have turned into lists."""
    return tuple(tuple(part) if isinstance(part, list) else part for part in state)


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


GRID_TAG = "val/prediction_grid"


def as_rgb(maps: torch.Tensor) -> torch.Tensor:
    """A (C, H, W) map as an RGB tile: grey for one channel, else channels as red, green..."""
    if maps.shape[0] == 1:
        return maps.expand(3, -1, -1)
    rgb = torch.zeros((3, *maps.shape[1:]), dtype=maps.dtype, device=maps.device)
    rgb[: min(3, maps.shape[0])] = maps[:3]
    return rgb


class PredictionGrid(Callback):
    """After each validation epoch, log the first ``num_images`` validation images with their
    truth (the target's channels) and the predicted probabilities to TensorBoard."""

    def __init__(self, num_images: int = 4) -> None:
        super().__init__()
        if num_images < 0:
            raise ValueError(f"num_images must be >= 0, got {num_images}")
        self.num_images = num_images
        self._kept: dict[str, torch.Tensor] | None = None

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: dict[str, Any],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Keep the first batch's first images."""
        if batch_idx == 0 and self.num_images > 0:
            keep = ("image", "mask", "target")
            self._kept = {k: v[: self.num_images] for k, v in batch.items() if k in keep}

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Predict the kept images and add the grid to every TensorBoard logger."""
        kept, self._kept = self._kept, None
        if kept is None or trainer.sanity_checking or not trainer.is_global_zero:
            return
        loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if not loggers:
            return
        images = kept["image"]
        truths = kept.get("target", kept["mask"])
        with torch.no_grad():
            probs = torch.sigmoid(pl_module(images))
        tiles = []
        for image, truth, prob in zip(images, truths, probs, strict=True):
            tiles += [image, as_rgb(truth), as_rgb(prob)]
        grid = make_grid(torch.stack(tiles).float().cpu(), nrow=3, padding=2, pad_value=1.0)
        for logger in loggers:
            logger.experiment.add_image(GRID_TAG, grid, trainer.global_step)


def synthetic_families(n_images: int, seed: int) -> dict[str, str]:
    """Image id -> family of the synthetic set of ``n_images`` drawn from ``seed`` (cheap)."""
    return {image_id(seed, k): plan_sample(seed, k).family for k in range(n_images)}


def split_folder(datamodule: Any, stage: str) -> str | None:
    """The name of the folder a split of a NucleiDataModule was read from, if known."""
    data_root = getattr(datamodule, "data_root", None)
    if not isinstance(data_root, Path):
        return None
    if stage == "test":
        test = locate_test_split(data_root, datamodule.source)
        return test[0].name if test else None
    return data_root.name


def image_sources(datamodule: Any, stage: str) -> tuple[dict[str, str], str | None]:
    """Where the images of a split come from: (id -> synthetic family, folder name)."""
    source = getattr(datamodule, "source", None)
    if source is not None and getattr(source, "root", "") is None:
        return synthetic_families(source.synthetic_images, source.synthetic_seed), None
    return {}, split_folder(datamodule, stage)


class ImageScores(Callback):
    """Keeps the per-image rows of the task's ``val_``/``test_instance_metric`` (``rows``)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    @staticmethod
    def rows_of(trainer: L.Trainer) -> list[dict[str, Any]]:
        """The rows kept by ``trainer``'s :class:`ImageScores` callback ([] without one)."""
        kept = [c.rows for c in trainer.callbacks if isinstance(c, ImageScores)]
        return kept[0] if kept else []

    @staticmethod
    def _metric(module: L.LightningModule, stage: str) -> DSBInstanceMetric | None:
        metric = getattr(module, f"{stage}_instance_metric", None)
        return metric if isinstance(metric, DSBInstanceMetric) else None

    def _start(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        metric = self._metric(module, stage)
        if metric is not None and not trainer.sanity_checking:
            metric.record_images = True
            metric.image_rows = []

    def _end(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        metric = self._metric(module, stage)
        if metric is None or not metric.record_images:
            return
        metric.record_images = False
        rows = metric.take_image_rows()  # every process calls it: a collective under DDP
        if rows:
            families, folder = image_sources(trainer.datamodule, stage)
            kinds = getattr(trainer.datamodule, "image_kinds", {})
            self.rows = [
                {
                    **row,
                    "source": families.get(row["id"], folder),
                    "kind": families.get(row["id"]) or kinds.get(row["id"]),
                }
                for row in rows
            ]

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Start keeping the validation metric's per-image rows."""
        self._start(trainer, pl_module, "val")

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Take the validation epoch's rows (if it scored images)."""
        self._end(trainer, pl_module, "val")

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Start keeping the test metric's per-image rows."""
        self._start(trainer, pl_module, "test")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Take the test epoch's rows."""
        self._end(trainer, pl_module, "test")
