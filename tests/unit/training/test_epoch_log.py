"""EpochLog: a line per epoch through logging, and not one figure of the run changed."""

from __future__ import annotations

import logging
import re
from functools import partial

import lightning as L
import pytest
import torch
from support.training import quiet_cpu_trainer
from torch.utils.data import DataLoader

from nuclei.models.unet import build_unet
from nuclei.training.callbacks import EpochLog, format_duration
from nuclei.training.task import SegmentationTask

LOGGER = "nuclei.training.callbacks"


def squares_batch(seed: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.zeros(2, 32, 32, dtype=torch.int32)
    for k in range(2):
        row, col = torch.randint(0, 20, (2,), generator=generator).tolist()
        labels[k, row : row + 10, col : col + 10] = 1
    image = (labels > 0).float().unsqueeze(1).expand(-1, 3, -1, -1).contiguous()
    image = image * 0.6 + 0.2 * torch.rand(image.shape, generator=generator)
    return {"image": image, "mask": (labels > 0).float().unsqueeze(1), "labels": labels}


def fit(callbacks: list[L.Callback], **settings: object) -> tuple[SegmentationTask, dict]:
    """A seeded 3-epoch fit of a tiny U-Net; returns the task and its final metrics."""
    L.seed_everything(7, verbose=False)
    task = SegmentationTask(
        build_unet(base_channels=4, depth=2),
        optimizer=partial(torch.optim.Adam, lr=1e-3),
        map_every_n_epochs=2,
    )
    batches = [squares_batch(seed) for seed in range(3)]
    trainer = quiet_cpu_trainer(
        max_epochs=3,
        callbacks=callbacks,
        **settings,
    )
    loader = DataLoader(batches, batch_size=None)
    trainer.fit(task, loader, DataLoader(batches[:1], batch_size=None))
    return task, {k: float(v) for k, v in trainer.callback_metrics.items()}


def epoch_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.INFO
    ]


def test_one_line_per_epoch_with_losses_iou_lr_speed_and_eta(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER):
        fit([EpochLog()])
    lines = epoch_lines(caplog)
    assert len(lines) == 3
    pattern = (
        r"epoch (\d)/3  step (\d+)  train/loss \d\.\d{4}  val/loss \d\.\d{4}  "
        r"val/iou \d\.\d{4}( +val/map \d\.\d{4})?  lr 1\.0e-03  \d+\.\d s/epoch  ETA (\S+)"
    )
    matches = [re.fullmatch(pattern, line) for line in lines]
    assert all(matches), lines
    assert [(m[1], m[2]) for m in matches] == [("1", "3"), ("2", "6"), ("3", "9")]
    assert [bool(m[3]) for m in matches] == [False, True, False]  # val/map when computed
    assert matches[-1][4] == "0s"


def test_validation_figures_only_on_epochs_that_validated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER):
        fit([EpochLog()], check_val_every_n_epoch=2)
    lines = epoch_lines(caplog)
    assert ["val/loss" in line for line in lines] == [False, True, False]
    assert all("train/loss" in line for line in lines)


def test_the_run_is_the_same_with_and_without_the_log() -> None:
    plain, plain_metrics = fit([])
    logged, logged_metrics = fit([EpochLog()])
    assert logged_metrics == plain_metrics
    for (name, a), (_, b) in zip(
        plain.state_dict().items(), logged.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.4, "0s"), (41.6, "42s"), (126, "2m06s"), (3 * 3600 + 300, "3h05m")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
