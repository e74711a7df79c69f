"""resize and crop size modes: crops at native resolution, whole padded images to validate."""

from functools import partial
from pathlib import Path

import lightning as L
import numpy as np
import torch
from support.datamodules import flat_datamodule
from support.samples import square_labels, write_flat, write_kaggle
from support.training import quiet_cpu_trainer
from torch import nn
from torch.utils.data import DataLoader

from nuclei.data.dataset import NucleiDataset, pad_collate
from nuclei.models.unet import build_unet
from nuclei.training.task import SegmentationTask

SHAPES = {"s0": (40, 56), "s1": (24, 24), "s2": (70, 33), "s3": (48, 64), "s4": (30, 90)}


def mixed_size_root(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    labels = {k: square_labels(shape, seed=i) for i, (k, shape) in enumerate(SHAPES.items())}
    write_kaggle(tmp_path / "stage1_train", labels)
    write_flat(tmp_path / "test", labels)
    return tmp_path, labels


def test_resize_mode_serves_every_split_at_image_size(tmp_path: Path) -> None:
    root, _ = mixed_size_root(tmp_path)
    dm = flat_datamodule(root=str(root), image_size=32, batch_size=2, decode_workers=1)
    dm.setup(None)
    assert dm.train_dataset.images.shape[1:] == (32, 32, 3)  # stacked, decoded once
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        batch = next(iter(loader))
        assert batch["image"].shape[-2:] == (32, 32) and "valid" not in batch


def test_crop_mode_trains_on_native_resolution_crops(tmp_path: Path) -> None:
    root, labels = mixed_size_root(tmp_path)
    dm = flat_datamodule(
        root=str(root), size_mode="crop", crop_size=32, batch_size=5, val_fraction=0.2
    )
    dm.setup("fit")
    # Native arrays in a list, decoded once: no resizing.
    for sample_id, image in zip(dm.train_ids, dm.train_dataset.images, strict=True):
        assert image.shape[:2] == SHAPES[sample_id]
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 32, 32) and batch["labels"].shape == (4, 32, 32)
    assert torch.equal(batch["mask"][:, 0] > 0, batch["labels"] > 0)
    # A crop is a window of the native image: its labels appear in the original labels.
    for sample_id, crop in zip(batch["id"], batch["labels"], strict=True):
        assert set(crop.unique().tolist()) <= set(np.unique(labels[sample_id]).tolist())


def test_crop_mode_pads_images_smaller_than_a_crop(tmp_path: Path) -> None:
    root, _ = mixed_size_root(tmp_path)
    dm = flat_datamodule(root=str(root), size_mode="crop", crop_size=96, hflip=False)
    dm.setup("fit")
    for k in range(len(dm.train_dataset)):
        sample = dm.train_dataset[k]
        assert sample["image"].shape == (3, 96, 96)
        # Mirrored padding keeps the mask on the mirrored nuclei.
        bright = sample["image"][0] > 0.5
        assert torch.equal(bright, sample["mask"][0] > 0)


def test_crop_mode_validates_whole_images_padded_to_the_stride(tmp_path: Path) -> None:
    root, labels = mixed_size_root(tmp_path)
    dm = flat_datamodule(root=str(root), size_mode="crop", pad_multiple=16, decode_workers=1)
    dm.setup("test")
    for batch in dm.test_dataloader():  # batch size 1 by default in crop mode
        (sample_id,) = batch["id"]
        height, width = SHAPES[sample_id]
        assert batch["size"].tolist() == [[height, width]]
        assert batch["image"].shape[-2:] == (-(-height // 16) * 16, -(-width // 16) * 16)
        assert batch["valid"][0, 0, :height, :width].all()
        assert batch["valid"].sum() == height * width
        np.testing.assert_array_equal(
            batch["labels"][0, :height, :width].numpy() > 0, labels[sample_id] > 0
        )
        assert not batch["mask"][0, 0][~batch["valid"][0, 0]].any()


def test_pad_collate_batches_different_sizes_with_mirrored_images() -> None:
    images = [np.full((5, 7, 3), 100, np.uint8), np.full((9, 3, 3), 200, np.uint8)]
    labels = [np.ones((5, 7), np.int32), np.full((9, 3), 2, np.int32)]
    dataset = NucleiDataset(images, labels, ["a", "b"])
    batch = pad_collate([dataset[0], dataset[1]], multiple=8)
    assert batch["image"].shape == (2, 3, 16, 8) and batch["labels"].shape == (2, 16, 8)
    assert batch["size"].tolist() == [[5, 7], [9, 3]]
    assert batch["valid"].sum(dim=(1, 2, 3)).tolist() == [35, 27]
    # Images are mirrored into the padding (no black border), labels are not.
    assert torch.allclose(batch["image"][0], torch.tensor(100 / 255))
    assert (batch["labels"][0][~batch["valid"][0, 0]] == 0).all()
    assert batch["id"] == ["a", "b"]


class ConstantNet(nn.Module):
    """Predicts foreground everywhere (a large positive logit)."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.tensor(8.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(x.shape[0], 1, *x.shape[-2:])


def test_padding_counts_in_neither_loss_nor_metrics() -> None:
    # An all-foreground image: a network that says "foreground" everywhere is exactly right
    # on the real pixels, and wrong on every padded one.
    dataset = NucleiDataset(
        [np.full((20, 12, 3), 255, np.uint8)], [np.ones((20, 12), np.int32)], ["x"]
    )
    loader = DataLoader(dataset, batch_size=1, collate_fn=partial(pad_collate, multiple=32))
    task = SegmentationTask(ConstantNet(), optimizer=partial(torch.optim.SGD, lr=0.0))
    trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    metrics = trainer.validate(task, dataloaders=loader, verbose=False)[0]
    assert metrics["val/acc"] == 1.0 and metrics["val/iou"] == 1.0
    assert metrics["val/loss"] < 1e-3  # 20x12 real pixels; the 32x32 padding would dominate


def test_crop_mode_fits_and_reports_test_metrics_at_native_size(tmp_path: Path) -> None:
    root, _ = mixed_size_root(tmp_path)
    dm = flat_datamodule(
        root=str(root), size_mode="crop", crop_size=32, batch_size=4, decode_workers=1
    )
    task = SegmentationTask(
        build_unet(depth=2, base_channels=4), optimizer=partial(torch.optim.Adam, lr=1e-2)
    )
    trainer = quiet_cpu_trainer(
        max_epochs=1,
    )
    trainer.fit(task, datamodule=dm)
    results = trainer.test(task, datamodule=dm, verbose=False)[0]
    assert {"test/loss", "test/acc", "test/iou", "test/dice"} <= set(results)
    assert 0.0 <= results["test/iou"] <= 1.0
