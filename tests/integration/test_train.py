"""Real (short) training runs on CPU: files written, values logged, learning happens."""

import json
from functools import partial
from pathlib import Path

import pytest
import torch
from support.datamodules import flat_datamodule
from support.samples import labelled_set, write_flat, write_kaggle, write_solution
from support.training import quiet_cpu_trainer
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader, Subset

from nuclei.cli.train import train
from nuclei.models.unet import build_unet
from nuclei.training.task import SegmentationTask


def read_events(run_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return events


def test_short_run_writes_metrics_checkpoints_split_and_events(train_config) -> None:
    cfg = train_config()
    summary = train(cfg)
    run_dir = Path(cfg.paths.output_dir)

    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("val/loss", "val/acc", "val/iou", "val/dice"):
        assert metrics[key] >= 0.0 and (key == "val/loss" or metrics[key] <= 1.0)
    assert metrics["val/iou"] == summary["val/iou"]
    assert metrics["epochs"] == 2
    # each image kind's map beside the pooled one: their image-weighted mean is the pooled map
    kinds = [k.removeprefix("val/images_") for k in metrics if k.startswith("val/images_")]
    assert kinds and sum(metrics[f"val/images_{k}"] for k in kinds) == 2
    weighted = sum(metrics[f"val/images_{k}"] * metrics[f"val/map_{k}"] for k in kinds) / 2
    assert weighted == pytest.approx(metrics["val/map"])

    checkpoints = {p.name for p in (run_dir / "checkpoints").glob("*.ckpt")}
    assert "last.ckpt" in checkpoints and len(checkpoints) == 2
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 1  # the last epoch, whether or not it was the best
    best = torch.load(metrics["best_checkpoint"], map_location="cpu", weights_only=False)
    assert best["nuclei_config"]["model"]["base_channels"] == 8  # the run's config travels

    split = json.loads((run_dir / "split.json").read_text())
    assert len(split["train"]) == 10 and len(split["val"]) == 2

    events = read_events(run_dir)
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss_step", "val/loss", "val/acc", "val/iou", "val/dice"} <= scalars
    val_iou = events.Scalars("val/iou")
    assert len(val_iou) == 2  # one per epoch; the final re-validation is not logged
    assert "val/prediction_grid" in events.Tags()["images"]
    grid = events.Images("val/prediction_grid")[-1]
    assert grid.width > grid.height > 0  # 3 columns (image, truth, prediction)
    assert "hp/val_iou" in scalars


def test_flat_layout_with_test_folder_reports_test_metrics_and_csv_logger_works(
    train_config, tmp_path: Path
) -> None:
    root = tmp_path / "flat"
    write_flat(root / "train", labelled_set("tr", 6, shape=(32, 32)))
    write_flat(root / "test", labelled_set("te", 2, shape=(32, 32)))
    cfg = train_config(
        f"data.source.root={root}", "data.size.image_size=32", "logger=csv", "trainer.max_epochs=1"
    )
    train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"val/iou", "test/iou", "test/acc", "test/map"} <= set(metrics)
    report = json.loads((run_dir / "data_report.json").read_text())
    assert report
    assert list((run_dir / "csv").rglob("metrics.csv"))


def test_kaggle_train_with_stage1_test_and_solution_csv_reports_test_metrics(
    train_config, tmp_path: Path
) -> None:
    train_dir = write_kaggle(tmp_path / "stage1_train", labelled_set("tr", 6, shape=(32, 32)))
    test_labels = labelled_set("te", 3, shape=(32, 32))
    test_dir = write_kaggle(tmp_path / "stage1_test", test_labels, with_masks=False)
    csv = write_solution(tmp_path / "stage1_solution.csv", test_labels)
    cfg = train_config(
        f"data.source.root={train_dir}",
        f"data.source.test_root={test_dir}",
        f"data.source.test_labels={csv}",
        "data.size.image_size=32",
        "trainer.max_epochs=1",
    )
    summary = train(cfg)
    metrics = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert {"test/loss", "test/iou", "test/map"} <= set(metrics)
    assert metrics["test/iou"] == summary["test/iou"]


def test_smp_unet_trains(train_config) -> None:
    cfg = train_config(
        "model=smp_unet",
        "model.encoder_name=resnet18",
        "model.encoder_depth=3",
        "trainer.max_epochs=1",
        small_unet=False,
    )
    summary = train(cfg)
    assert 0.0 <= summary["val/iou"] <= 1.0
    assert Path(summary["best_checkpoint"]).is_file()


def test_overfits_a_handful_of_images(synthetic_root: Path) -> None:
    """Learning works: a small U-Net memorises 4 images within 150 steps (val IoU > 0.7)."""
    torch.manual_seed(0)
    dm = flat_datamodule(root=str(synthetic_root), image_size=64, hflip=False, decode_workers=1)
    dm.setup("fit")
    loader = DataLoader(Subset(dm.train_dataset, range(4)), batch_size=4)
    task = SegmentationTask(
        build_unet(depth=3, base_channels=8), optimizer=partial(torch.optim.Adam, lr=3e-3)
    )
    trainer = quiet_cpu_trainer(
        max_steps=150,
        num_sanity_val_steps=0,
    )
    trainer.fit(task, train_dataloaders=loader)
    assert trainer.global_step == 150
    metrics = trainer.validate(task, dataloaders=loader, verbose=False)[0]
    assert metrics["val/iou"] > 0.7, metrics
