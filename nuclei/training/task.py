"""SegmentationTask: the LightningModule that trains, validates and runs a nuclei network."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from lightning.pytorch.trainer.states import TrainerFn
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torchmetrics import MeanMetric, MetricCollection

from nuclei.data.batches import NATIVE_LABELS, native_labels, native_maps
from nuclei.data.targets import check_target, target_channels
from nuclei.instances.postprocess import PostprocessConfig, instances_from_maps
from nuclei.metrics.dsb import DSBInstanceMetric
from nuclei.metrics.pixel import foreground_metrics
from nuclei.training.losses import ChannelWeightedLoss, LossConfig
from nuclei.training.speed import SpeedOptions, apply_speed_options, memory_format

Batch = dict[str, Any]
Factory = Callable[..., Any]
Spec = Mapping[str, Any] | DictConfig


def _plain(value: Any) -> Any:
    """A config node as plain containers (what a checkpoint can hold under weights_only)."""
    if isinstance(value, DictConfig):
        return OmegaConf.to_container(value, resolve=True)
    return dict(value) if isinstance(value, Mapping) else value


def _config_or_none(spec: Any) -> dict[str, Any] | None:
    """A ``_target_`` config as plain containers; None for a ready object (not recordable)."""
    return _plain(spec) if isinstance(spec, Mapping | DictConfig) else None


def _build(spec: Any) -> Any:
    """Instantiate a ``_target_`` config (a network, an optimizer partial); pass objects on."""
    if isinstance(spec, Mapping | DictConfig):
        return instantiate(spec)
    return spec


class SegmentationTask(L.LightningModule):
    """Nuclei segmentation: network, loss, pixel and instance metrics, optimizer.

    ``net``, ``optimizer`` and ``scheduler`` are configs (``_target_``; the optimizer and
    scheduler ``_partial_``) or ready objects; from configs, the constructor arguments are
    the checkpoint's hyperparameters, so ``SegmentationTask.load_from_checkpoint(path)``
    rebuilds the task (ready objects are not recorded: pass them to it again). ``target``
    (``binary``, ``border``, ``distance``; see :mod:`nuclei.data.targets`) sets the
    network's channels and the loss (:class:`~nuclei.training.losses.ChannelWeightedLoss`,
    ``loss``). Pixel metrics
    (``acc``, ``iou``, ``dice``) score channel 0, the foreground, against the true mask; they
    are torchmetrics objects logged as such, exact under DDP, as are ``val/loss`` and
    ``test/loss`` (pixel-weighted means over the split, at the network's resolution).

    Validation and test metrics are computed on each image's own pixels: whole images (crop
    mode), or, for images resized for the network (resize mode, batches carrying
    ``native_labels``), probabilities scaled back to the image's size before thresholding,
    exactly what ``nuclei-predict`` returns. In resize mode the pixel metrics at the
    network's resolution are also logged, as ``val/resized/iou`` (and ``acc``, ``dice``).

    The DSB2018 instance metric (``map``, ``ap50``, ``ap75``, ``f1``, ``count_error``,
    ``n_split``, ``n_merged``) compares ``postprocess``-ed predictions with the instance
    ``labels``. It costs CPU, so during ``fit`` it runs every ``map_every_n_epochs``
    validation epochs (0: never); ``trainer.validate`` and ``trainer.test`` always compute it.
    """

    def __init__(
        self,
        net: Spec | nn.Module,
        optimizer: Spec | Factory,
        scheduler: Spec | Factory | None = None,
        scheduler_monitor: str = "val/loss",
        loss: Mapping[str, Any] | LossConfig | None = None,
        threshold: float = 0.5,
        postprocess: Mapping[str, Any] | PostprocessConfig | None = None,
        map_every_n_epochs: int = 5,
        target: str = "binary",
        speed: Mapping[str, Any] | SpeedOptions | None = None,
    ) -> None:
        super().__init__()
        if map_every_n_epochs < 0:
            raise ValueError(f"map_every_n_epochs must be >= 0, got {map_every_n_epochs}")
        loss = loss if isinstance(loss, LossConfig) else LossConfig(**_plain(loss or {}))
        if not isinstance(postprocess, PostprocessConfig):
            postprocess = PostprocessConfig(**_plain(postprocess or {}))
        speed = speed if isinstance(speed, SpeedOptions) else SpeedOptions.from_config(speed)
        self.save_hyperparameters(
            {
                "net": _config_or_none(net),
                "optimizer": _config_or_none(optimizer),
                "scheduler": _config_or_none(scheduler),
                "scheduler_monitor": scheduler_monitor,
                "loss": asdict(loss),
                "threshold": threshold,
                "postprocess": asdict(postprocess),
                "map_every_n_epochs": map_every_n_epochs,
                "target": target,
                "speed": asdict(speed),
            },
            logger=False,
        )
        self.net = apply_speed_options(_build(net), speed)
        self.input_memory_format = memory_format(speed.channels_last)
        self.optimizer_factory = _build(optimizer)
        self.scheduler_factory = _build(scheduler)
        self.target = check_target(target)
        self.loss_fn = ChannelWeightedLoss(target_channels(self.target), **asdict(loss))
        self.postprocess = postprocess
        metrics = foreground_metrics(threshold)
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.val_resized_metrics = metrics.clone(prefix="val/resized/")
        self.test_resized_metrics = metrics.clone(prefix="test/resized/")
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self.val_instance_metric = DSBInstanceMetric()
        self.test_instance_metric = DSBInstanceMetric()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Logits (N, C, H, W) for images (N, 3, H, W) in [0, 1]; C follows the target."""
        return self.net(image.contiguous(memory_format=self.input_memory_format))

    def _shared_step(self, batch: Batch, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss and logits of a batch; logs the loss and updates the pixel metrics."""
        logits = self(batch["image"])
        loss = self.loss_fn(logits, batch.get("target", batch["mask"]), batch.get("valid"))
        batch_size = batch["image"].shape[0]
        if stage == "train":
            self.log("train/loss", loss, on_epoch=True, prog_bar=True, batch_size=batch_size)
            self._update_pixel_metrics(self.train_metrics, batch, logits, batch_size)
            return loss, logits
        # mean over all scored pixels of the split, whatever the batches and processes
        mean_loss = self.val_loss if stage == "val" else self.test_loss
        scored_pixels = batch["valid"].sum() if "valid" in batch else batch["mask"].numel()
        mean_loss.update(loss.detach(), weight=scored_pixels)
        self.log(f"{stage}/loss", mean_loss, on_epoch=True, prog_bar=True, batch_size=batch_size)
        metrics = self.val_metrics if stage == "val" else self.test_metrics
        if NATIVE_LABELS in batch:
            resized = self.val_resized_metrics if stage == "val" else self.test_resized_metrics
            self._update_pixel_metrics(resized, batch, logits, batch_size)
            self._update_native_pixel_metrics(metrics, batch, logits, batch_size)
        else:
            self._update_pixel_metrics(metrics, batch, logits, batch_size)
        return loss, logits

    def _update_pixel_metrics(
        self, metrics: MetricCollection, batch: Batch, logits: torch.Tensor, batch_size: int
    ) -> None:
        """Score the foreground channel against ``mask`` at the network's resolution (padding
        left out) and log the metrics."""
        scored, mask = logits[:, :1].detach(), batch["mask"]
        if "valid" in batch:  # whole images padded to the stride: padding is not scored
            scored, mask = scored[batch["valid"]], mask[batch["valid"]]
        metrics.update(torch.sigmoid(scored), mask.int())
        self._log_pixel_metrics(metrics, batch_size)

    def _update_native_pixel_metrics(
        self, metrics: MetricCollection, batch: Batch, logits: torch.Tensor, batch_size: int
    ) -> None:
        """Score the foreground probability, scaled back to each image's own size, against
        the image's own labels, and log the metrics."""
        probs = native_maps(batch, torch.sigmoid(logits[:, :1].detach()).float())
        for prob, labels in zip(probs, batch[NATIVE_LABELS], strict=True):
            truth = torch.from_numpy(np.asarray(labels) > 0).to(prob.device)
            metrics.update(prob[0].flatten(), truth.flatten().int())
        self._log_pixel_metrics(metrics, batch_size)

    def _log_pixel_metrics(self, metrics: MetricCollection, batch_size: int) -> None:
        training = metrics is self.train_metrics
        self.log_dict(
            metrics, on_step=False, on_epoch=True, batch_size=batch_size, prog_bar=not training
        )

    def _instance_metric_due(self) -> bool:
        """Whether this validation/test epoch computes the (CPU-bound) instance metric."""
        if self.trainer.sanity_checking:
            return False
        if self.trainer.state.fn != TrainerFn.FITTING:
            return True  # trainer.validate / trainer.test: always
        every = self.hparams.map_every_n_epochs
        return every > 0 and (self.current_epoch + 1) % every == 0

    def _update_instance_metric(
        self, metric: DSBInstanceMetric, batch: Batch, logits: torch.Tensor
    ) -> None:
        """Postprocess each image's probability maps, at its own size, into instances and
        score them against its own labels (:mod:`nuclei.data.batches`). The batch's ``id``
        names each image's row when the metric keeps per-image rows."""
        probs = native_maps(batch, torch.sigmoid(logits.detach()).float())
        maps = [m.cpu().numpy() for m in probs]
        truth = native_labels(batch)
        predicted = [instances_from_maps(m, self.postprocess, self.target) for m in maps]
        metric.update(predicted, truth, ids=batch.get("id"))

    def _log_instance_metric(self, metric: DSBInstanceMetric, stage: str) -> None:
        if metric.update_count == 0:
            return
        # compute() already gathers the states of every process, so all ranks hold the same
        # values; sync_dist averages these equal values (one small all-reduce per epoch) and
        # spares the "use sync_dist=True" warning Lightning gives for epoch-level tensors.
        values = {f"{stage}/{name}": value for name, value in metric.compute().items()}
        self.log_dict(values, sync_dist=True)
        metric.reset()

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        """One optimisation step's loss; also accumulates training metrics."""
        loss, _ = self._shared_step(batch, "train")
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        """Validation loss and pixel metrics, and the instance metric when it is due."""
        _, logits = self._shared_step(batch, "val")
        if self._instance_metric_due():
            self._update_instance_metric(self.val_instance_metric, batch, logits)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        """Test loss, pixel metrics and instance metric."""
        _, logits = self._shared_step(batch, "test")
        self._update_instance_metric(self.test_instance_metric, batch, logits)

    def predict_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        """Probabilities (N, C, H, W): foreground, then the target's border/distance channel."""
        image = batch["image"] if isinstance(batch, dict) else batch
        return torch.sigmoid(self(image))

    def on_validation_epoch_end(self) -> None:
        """Log the validation instance metric (when it was computed)."""
        self._log_instance_metric(self.val_instance_metric, "val")

    def on_test_epoch_end(self) -> None:
        """Log the test instance metric."""
        self._log_instance_metric(self.test_instance_metric, "test")

    def configure_optimizers(self) -> dict[str, Any]:
        """Build the optimizer (and scheduler, if any) over the trainable parameters."""
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = self.optimizer_factory(params)
        if self.scheduler_factory is None:
            return {"optimizer": optimizer}
        scheduler = self.scheduler_factory(optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": self.hparams.scheduler_monitor},
        }
