"""Train images/s of the Lightning path (``SegmentationTask`` under a ``Trainer``, as
``nuclei-train`` runs it), alone or interleaved chunk by chunk with the plain loop, and
images/s of the real training data loader, without a model."""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import replace
from functools import partial
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, RichProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.data import DataLoader

from benchmarks.common import LR, Settings, TrainVariant, build_net, make_batches, synchronize
from benchmarks.plain import PlainLoop
from nuclei.training.speed import SpeedOptions
from nuclei.training.task import SegmentationTask


class StepClock(Callback):
    """Stamps the end of step 1, of the warm-up and of the last step; runs plain chunks.

    With a ``plain`` loop, it runs ``warmup`` plain steps before training starts, and after
    every ``chunk`` timed Lightning steps as many plain steps, timing both sides.
    """

    def __init__(
        self, device: torch.device, warmup: int, total: int, chunk: int, plain: PlainLoop | None
    ) -> None:
        super().__init__()
        self.device, self.warmup, self.total, self.chunk = device, warmup, total, chunk
        self.plain = plain
        self.stamps: dict[str, float] = {}
        self.lightning_s: list[float] = []
        self.plain_s: list[float] = []
        self.since = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Warm the plain loop up, then start the clock."""
        if self.plain is not None:
            self.plain.run(self.warmup)
        self.stamps["start"] = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *_: Any) -> None:
        """Stamp this step; after each timed chunk, run (and time) as many plain steps."""
        step = trainer.global_step  # already counts this step
        synchronize(self.device)
        now = time.perf_counter()
        if step == 1:
            self.stamps["first"] = now
        if step == self.warmup:
            self.stamps["warm"] = self.since = now
        if step == self.total:
            self.stamps["end"] = now
        timed = step - self.warmup
        if self.plain is not None and timed > 0 and timed % self.chunk == 0:
            self.lightning_s.append(now - self.since)
            self.plain_s.append(self.plain.run(self.chunk))
            self.since = time.perf_counter()


def build_task(settings: Settings, speed: SpeedOptions) -> SegmentationTask:
    """The task ``nuclei-train`` builds, on the benchmarked network, with Adam and ``speed``."""
    return SegmentationTask(
        net=build_net(settings), optimizer=partial(torch.optim.Adam, lr=LR), speed=speed
    )


def build_trainer(
    settings: Settings, precision: str, max_steps: int, clock: StepClock, logs: str
) -> L.Trainer:
    """A one-device Trainer that logs as ``nuclei-train`` does, without validation."""
    return L.Trainer(
        accelerator="gpu" if torch.device(settings.device).type == "cuda" else "cpu",
        devices=1,
        precision=precision,
        max_steps=max_steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=TensorBoardLogger(logs, name="", version="", default_hp_metric=False),
        log_every_n_steps=10,  # as conf/trainer/default.yaml
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[clock, RichProgressBar()],
    )


def time_lightning(
    settings: Settings, variant: TrainVariant, interleave: bool = False
) -> dict[str, Any]:
    """Train images/s of ``SegmentationTask`` under a ``Trainer``, as ``nuclei-train`` runs it.

    With ``interleave``, every ``chunk`` Lightning steps are followed by as many steps of a
    :class:`PlainLoop` in the same process, ``repeats`` times: both see the same machine
    state, and ``ratio`` is the median of the per-chunk ratios (plain time / Lightning time).
    Otherwise ``steps`` Lightning steps are timed after the warm-up.
    """
    device = torch.device(settings.device)
    if variant.precision.startswith("bf16") and device.type == "cpu":
        # CPUs without native bf16 (AVX2 only) run bf16 convolutions many times slower.
        settings = replace(settings, warmup=1, steps=min(settings.steps, settings.slow_steps))
    timed = settings.chunk * settings.repeats if interleave else settings.steps
    total = settings.warmup + timed
    plain = PlainLoop(settings) if interleave else None
    batches = make_batches(settings)
    loader = DataLoader([batches[i % len(batches)] for i in range(total)], batch_size=None)
    task = build_task(settings, variant.speed)
    clock = StepClock(device, settings.warmup, total, settings.chunk, plain)
    with tempfile.TemporaryDirectory() as logs:
        trainer = build_trainer(settings, variant.precision, total, clock, logs)
        trainer.fit(task, train_dataloaders=loader)
    return lightning_figures(clock, settings, timed)


def lightning_figures(clock: StepClock, settings: Settings, timed: int) -> dict[str, Any]:
    """Images/s (and, interleaved, the plain loop's and their ratio) from a run's clock."""
    stamps = clock.stamps
    result: dict[str, Any] = {"first_step_s": stamps["first"] - stamps["start"]}
    result["timed_steps"] = timed
    if clock.plain is None:
        result["img_s"] = timed * settings.batch / (stamps["end"] - stamps["warm"])
        return result
    images = settings.chunk * settings.batch
    ratios = [p / lt for p, lt in zip(clock.plain_s, clock.lightning_s, strict=True)]
    return result | {
        "img_s": images / statistics.median(clock.lightning_s),
        "plain_img_s": images / statistics.median(clock.plain_s),
        "ratio": statistics.median(ratios),
        "chunk_ratios": [round(r, 3) for r in ratios],
    }


def time_loader(settings: Settings) -> dict[str, Any]:
    """Images/s of the ``NucleiDataModule`` train loader (defaults, synthetic set).

    Each of ``loader_epochs`` passes moves every batch to the device; its first batch
    (the iterator's start-up, workers if any) is not timed.
    """
    # Imported here: the Lightning measurements' peak memory holds no data pipeline.
    from nuclei.data.config import LoaderConfig, SizeConfig
    from nuclei.data.datamodule import NucleiDataModule

    datamodule = NucleiDataModule(
        size=SizeConfig(image_size=settings.size), loader=LoaderConfig(batch_size=settings.batch)
    )
    started = time.perf_counter()
    datamodule.prepare_data()
    datamodule.setup("fit")
    setup_s = time.perf_counter() - started
    device = torch.device(settings.device)
    images, elapsed = 0, 0.0
    for _ in range(settings.loader_epochs):
        batches = iter(datamodule.train_dataloader())
        next(batches)  # first batch: iterator start-up (workers, if any)
        started = time.perf_counter()
        for batch in batches:
            batch["image"].to(device, non_blocking=True)
            batch["mask"].to(device, non_blocking=True)
            images += len(batch["image"])
        synchronize(device)
        elapsed += time.perf_counter() - started
    return {"img_s": images / elapsed, "setup_s": setup_s, "images": images}
