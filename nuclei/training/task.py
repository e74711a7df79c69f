"""SegmentationTask: the LightningModule that trains, validates and runs a nuclei network."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.trainer.states import TrainerFn
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import BinaryAccuracy, BinaryF1Score, BinaryJaccardIndex
from torchvision.utils import make_grid

from nuclei.data.targets import check_target, target_channels
from nuclei.instances.postprocess import PostprocessConfig, instances_from_maps
from nuclei.metrics.dsb import DSBInstanceMetric

Batch = dict[str, Any]
OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]


def foreground_metrics(threshold: float) -> MetricCollection:
    """Pixel accuracy, foreground IoU and Dice of binary masks, as one collection.

    Inputs are always probabilities and {0, 1} targets made by this module, so torchmetrics'
    per-update input checks (a sort of every target pixel) are skipped: they cost about half
    of the update, which runs on every training step.
    """
    checks = {"threshold": threshold, "validate_args": False}
    return MetricCollection(
        {
            "acc": BinaryAccuracy(**checks),
            "iou": BinaryJaccardIndex(**checks),
            "dice": BinaryF1Score(**checks),
        }
    )


def masked_mean(values: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``values`` (N, H, W) over the pixels where ``valid`` (N, H, W) is True."""
    if valid is None:
        return values.mean()
    return values[valid].mean()


def soft_dice_loss(
    prob: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None
) -> torch.Tensor:
    """``1 - Dice`` of probabilities against a target (N, H, W), pooled over the batch."""
    if valid is not None:
        prob, target = prob[valid], target[valid]
    intersection = (prob * target).sum()
    return 1.0 - (2.0 * intersection + 1.0) / (prob.sum() + target.sum() + 1.0)


def as_rgb(maps: torch.Tensor) -> torch.Tensor:
    """A (C, H, W) map as an RGB tile: grey for one channel, else channels as red, green..."""
    if maps.shape[0] == 1:
        return maps.expand(3, -1, -1)
    rgb = torch.zeros((3, *maps.shape[1:]), dtype=maps.dtype, device=maps.device)
    rgb[: min(3, maps.shape[0])] = maps[:3]
    return rgb


class SegmentationTask(L.LightningModule):
    """Nuclei segmentation: BCE-with-logits loss, foreground metrics, image grids.

    ``target`` (``data.target``, see :mod:`nuclei.data.targets`) is what the network
    predicts: ``binary`` (one foreground channel, trained exactly as always: plain BCE,
    ``pos_weight`` on foreground pixels, unless ``dice_weight`` > 0), ``border`` or
    ``distance`` (a second channel, learnt from the batch's ``target``). The loss is then
    the ``channel_weights``-weighted mean over channels of BCE (+ ``dice_weight`` x soft
    Dice); ``pos_weight`` weighs channel 0 only. Pixel metrics (``acc``, ``iou``, ``dice``)
    always score channel 0, the foreground, against ``mask``, as for a binary model.

    The optimizer and scheduler are injected as factories (Hydra ``_partial_: true``), so
    this module does not hard-code them. Metrics are torchmetrics objects logged as such,
    so their values are exact under DDP. ``val/loss`` and ``test/loss`` are means over every
    scored pixel of the split (a pixel-weighted ``MeanMetric``), also exact under DDP;
    ``train/loss`` is the per-step loss and its per-epoch mean on each process.

    The DSB2018 instance metric (``map``, ``ap50``, ``ap75``, ``f1``, ``count_error``,
    ``n_split``, ``n_merged``) compares ``postprocess``-ed predictions with the batch's
    instance ``labels``. It costs CPU, so during ``fit`` it runs every
    ``map_every_n_epochs`` validation epochs (0: never); ``trainer.validate`` and
    ``trainer.test`` always compute it.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        scheduler_monitor: str = "val/loss",
        pos_weight: float | None = None,
        threshold: float = 0.5,
        num_logged_images: int = 4,
        postprocess: Mapping[str, Any] | PostprocessConfig | None = None,
        map_every_n_epochs: int = 5,
        target: str = "binary",
        channel_weights: Sequence[float] | None = None,
        dice_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if map_every_n_epochs < 0:
            raise ValueError(f"map_every_n_epochs must be >= 0, got {map_every_n_epochs}")
        channels = target_channels(check_target(target))
        if channel_weights is None:
            channel_weights = [1.0] * channels
        channel_weights = [float(w) for w in channel_weights]
        if len(channel_weights) != channels or min(channel_weights) < 0 or not any(channel_weights):
            raise ValueError(
                f"channel_weights must be {channels} non-negative number(s), not all 0, for "
                f"target={target}; got {channel_weights}"
            )
        if dice_weight < 0:
            raise ValueError(f"dice_weight must be >= 0, got {dice_weight}")
        self.target = target
        self.channel_weights = channel_weights
        self.dice_weight = float(dice_weight)
        if not isinstance(postprocess, PostprocessConfig):
            postprocess = PostprocessConfig(**dict(postprocess or {}))
        self.postprocess = postprocess
        self.map_every_n_epochs = map_every_n_epochs
        self.save_hyperparameters(
            ignore=["net", "optimizer", "scheduler", "postprocess", "channel_weights"]
        )
        self.hparams["channel_weights"] = channel_weights
        self.hparams["postprocess"] = asdict(postprocess)  # plain dict: safe to unpickle
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.threshold = threshold
        self.num_logged_images = num_logged_images
        weight = None if pos_weight is None else torch.tensor([float(pos_weight)])
        self.register_buffer("pos_weight", weight, persistent=False)
        metrics = foreground_metrics(threshold)
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self.val_instance_metric = DSBInstanceMetric()
        self.test_instance_metric = DSBInstanceMetric()
        self.run_config: dict[str, Any] | None = None
        self._grid_batch: Batch | None = None
        # torch.channels_last when the network's weights are (see nuclei.training.speed).
        self.input_memory_format = torch.contiguous_format

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Logits (N, C, H, W) for images (N, 3, H, W) in [0, 1]; C follows the target."""
        return self.net(image.contiguous(memory_format=self.input_memory_format))

    def loss(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy with logits, optionally weighting foreground pixels."""
        return F.binary_cross_entropy_with_logits(logits, mask, pos_weight=self.pos_weight)

    def target_loss(
        self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Channel-weighted mean of per-channel BCE (+ ``dice_weight`` x soft Dice).

        ``logits`` and ``target`` are (N, C, H, W); ``valid`` (N, 1, H, W) marks the scored
        pixels (None: all). ``pos_weight`` weighs the foreground pixels of channel 0.
        """
        mask = None if valid is None else valid[:, 0]
        total = logits.new_zeros(())
        for channel, weight in enumerate(self.channel_weights):
            if weight == 0:
                continue
            pos_weight = self.pos_weight if channel == 0 else None
            bce = F.binary_cross_entropy_with_logits(
                logits[:, channel], target[:, channel], pos_weight=pos_weight, reduction="none"
            )
            term = masked_mean(bce, mask)
            if self.dice_weight > 0:
                prob = torch.sigmoid(logits[:, channel])
                term = term + self.dice_weight * soft_dice_loss(prob, target[:, channel], mask)
            total = total + weight * term
        return total / sum(self.channel_weights)

    def _shared_step(
        self, batch: Batch, metrics: MetricCollection, stage: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss and logits of a batch; logs the loss and updates the pixel metrics."""
        logits = self(batch["image"])
        foreground = logits[:, :1]
        scored, target = foreground, batch["mask"]
        if "valid" in batch:  # whole images padded to the stride: padding is not scored
            scored, target = foreground[batch["valid"]], target[batch["valid"]]
        if self.target == "binary" and self.dice_weight == 0:
            loss = self.loss(scored, target)  # the binary model's loss, as it always was
        else:
            full = batch["target"] if "target" in batch else batch["mask"]
            loss = self.target_loss(logits, full, batch.get("valid"))
        batch_size = batch["image"].shape[0]
        metrics.update(torch.sigmoid(scored.detach()), target.int())
        if stage == "train":
            self.log("train/loss", loss, on_epoch=True, prog_bar=True, batch_size=batch_size)
        else:  # mean over all scored pixels of the split, whatever the batches and processes
            mean_loss = self.val_loss if stage == "val" else self.test_loss
            mean_loss.update(loss.detach(), weight=target.numel())
            self.log(
                f"{stage}/loss", mean_loss, on_epoch=True, prog_bar=True, batch_size=batch_size
            )
        self.log_dict(
            metrics, on_step=False, on_epoch=True, batch_size=batch_size, prog_bar=stage != "train"
        )
        return loss, logits

    def _instance_metric_due(self) -> bool:
        """Whether this validation/test epoch computes the (CPU-bound) instance metric."""
        if self.trainer.sanity_checking:
            return False
        if self.trainer.state.fn != TrainerFn.FITTING:
            return True  # trainer.validate / trainer.test: always
        every = self.map_every_n_epochs
        return every > 0 and (self.current_epoch + 1) % every == 0

    def _update_instance_metric(
        self, metric: DSBInstanceMetric, batch: Batch, logits: torch.Tensor
    ) -> None:
        """Postprocess each image's probability maps into instances and score them against
        ``labels`` (with the border/distance channel too, for such a target).

        Batches of padded whole images (with a ``size`` entry) are cropped back to each
        image's own (height, width) first, so padding adds no false nuclei.
        """
        probs = torch.sigmoid(logits.detach()).float().cpu().numpy()
        labels = batch["labels"].cpu().numpy()
        sizes = batch["size"].tolist() if "size" in batch else [labels.shape[-2:]] * len(labels)
        predicted, truth = [], []
        for prob, label, (height, width) in zip(probs, labels, sizes, strict=True):
            maps = prob[:, :height, :width]
            predicted.append(instances_from_maps(maps, self.postprocess, self.target))
            truth.append(label[:height, :width])
        metric.update(predicted, truth)

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
        loss, _ = self._shared_step(batch, self.train_metrics, "train")
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        """Validation loss and metrics; keeps the first batch for the image grid."""
        if batch_idx == 0 and self.num_logged_images > 0:
            self._grid_batch = {
                k: v[: self.num_logged_images]
                for k, v in batch.items()
                if k in ("image", "mask", "target")
            }
        _, logits = self._shared_step(batch, self.val_metrics, "val")
        if self._instance_metric_due():
            self._update_instance_metric(self.val_instance_metric, batch, logits)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        """Test loss, pixel metrics and instance metric."""
        _, logits = self._shared_step(batch, self.test_metrics, "test")
        self._update_instance_metric(self.test_instance_metric, batch, logits)

    def predict_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        """Probabilities (N, C, H, W): foreground, then the target's border/distance channel."""
        image = batch["image"] if isinstance(batch, dict) else batch
        return torch.sigmoid(self(image))

    def on_test_epoch_end(self) -> None:
        """Log the test instance metric."""
        self._log_instance_metric(self.test_instance_metric, "test")

    def on_validation_epoch_end(self) -> None:
        """Log the instance metric (when due) and a grid of input, truth and prediction."""
        self._log_instance_metric(self.val_instance_metric, "val")
        if self._grid_batch is None or self.trainer.sanity_checking:
            return
        loggers = [lg for lg in self.loggers if isinstance(lg, TensorBoardLogger)]
        if not loggers or not self.trainer.is_global_zero:
            return
        images = self._grid_batch["image"]
        truths = self._grid_batch.get("target", self._grid_batch["mask"])
        with torch.no_grad():
            probs = torch.sigmoid(self(images))
        tiles = []
        for image, truth, prob in zip(images, truths, probs, strict=True):
            tiles += [image, as_rgb(truth), as_rgb(prob)]
        grid = make_grid(torch.stack(tiles).float().cpu(), nrow=3, padding=2, pad_value=1.0)
        for logger in loggers:
            logger.experiment.add_image("val/prediction_grid", grid, self.global_step)
        self._grid_batch = None

    def configure_optimizers(self) -> dict[str, Any]:
        """Build the injected optimizer (and scheduler, if any) over trainable parameters."""
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = self.optimizer_factory(params)
        if self.scheduler_factory is None:
            return {"optimizer": optimizer}
        scheduler = self.scheduler_factory(optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": self.hparams.scheduler_monitor},
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the run's full configuration, so a checkpoint alone rebuilds the run."""
        if self.run_config is not None:
            checkpoint["nuclei_config"] = self.run_config
