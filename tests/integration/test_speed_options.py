"""speed.compile, speed.channels_last and bf16-mixed precision: short real CPU trainings."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import pytest
import torch
from support.training import quiet_cpu_trainer
from torch import nn
from torch.utils.data import DataLoader

from nuclei.cli.train import train
from nuclei.models.unet import build_unet
from nuclei.runs.checkpoint import load_run, restore_task
from nuclei.training.speed import SpeedOptions
from nuclei.training.task import SegmentationTask


def small_task(speed: SpeedOptions | None = None) -> SegmentationTask:
    torch.manual_seed(0)
    return SegmentationTask(
        build_unet(depth=2, base_channels=4),
        optimizer=partial(torch.optim.Adam, lr=1e-3),
        speed=speed,
    )


def first_conv(task: SegmentationTask) -> nn.Conv2d:
    return next(m for m in task.net.modules() if isinstance(m, nn.Conv2d))


def assert_sane(summary: dict) -> None:
    for key in ("val/loss", "val/iou", "val/acc"):
        assert math.isfinite(summary[key]), key
    assert 0.0 <= summary["val/iou"] <= 1.0
    assert Path(summary["best_checkpoint"]).is_file()


def test_speed_options_reject_unknown_keys_and_modes() -> None:
    assert SpeedOptions.from_config({"compile": True}) == SpeedOptions(compile=True)
    with pytest.raises(ValueError, match="unknown speed option"):
        SpeedOptions.from_config({"compiled": True})
    with pytest.raises(ValueError, match="compile_mode"):
        SpeedOptions(compile=True, compile_mode="fastest")


def test_channels_last_converts_weights_and_inputs_and_computes_the_same() -> None:
    image = torch.rand(2, 3, 32, 32)
    eager = small_task().eval()
    fast = small_task(SpeedOptions(channels_last=True)).eval()
    conv = first_conv(fast)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not first_conv(eager).weight.is_contiguous(memory_format=torch.channels_last)
    seen = []
    conv.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0]))
    with torch.no_grad():
        out = fast(image)
        expected = eager(image)
    assert seen[0].is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)


def test_bf16_mixed_runs_the_network_in_bfloat16_on_cpu() -> None:
    task = small_task()
    dtypes = []
    first_conv(task).register_forward_hook(lambda _m, _i, out: dtypes.append(out.dtype))
    batches = [{"image": torch.rand(2, 3, 32, 32), "mask": torch.ones(2, 1, 32, 32)}] * 2
    trainer = quiet_cpu_trainer(
        precision="bf16-mixed",
        max_steps=2,
    )
    trainer.fit(task, train_dataloaders=DataLoader(batches, batch_size=None))
    assert dtypes == [torch.bfloat16, torch.bfloat16]


def test_training_with_channels_last(train_config) -> None:
    summary = train(train_config("speed.channels_last=true", "trainer.max_epochs=1"))
    assert_sane(summary)


def test_training_in_bf16_mixed_precision(train_config) -> None:
    summary = train(train_config("trainer.precision=bf16-mixed", "trainer.max_epochs=1"))
    assert_sane(summary)


def test_training_compiled_writes_checkpoints_that_load_into_the_eager_network(
    train_config,
) -> None:
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    # 10 training images in 2 batches of 5, 2 validation images: one shape each way.
    cfg = train_config(
        "speed.compile=true",
        "trainer.max_epochs=1",
        "data.loader.batch_size=5",
        "model.depth=1",  # compile time grows with the graph: keep it small
        "model.base_channels=4",
    )
    summary = train(cfg)
    assert_sane(summary)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # it did compile
    task = restore_task(load_run(summary["best_checkpoint"]))  # keys without _orig_mod.
    assert not hasattr(task.net, "_orig_mod")
