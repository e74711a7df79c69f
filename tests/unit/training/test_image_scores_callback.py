"""ImageScores: the rows of a validation or test run, scored once, named, with their source."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from support.datamodules import flat_datamodule
from support.training import quiet_cpu_trainer
from torch import nn
from torch.utils.data import DataLoader

from nuclei.data.datamodule import NucleiDataModule
from nuclei.metrics.dsb import image_scores
from nuclei.models.unet import build_unet
from nuclei.synthetic import image_id
from nuclei.synthetic.cache import write_dataset
from nuclei.training.callbacks import ImageScores, image_sources, synthetic_families
from nuclei.training.task import SegmentationTask


class MaskEcho(nn.Module):
    """A 'network' whose logits are +10 where the first image channel is 1, else -10."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, :1] - 0.5) * 20.0 + self.unused


def squares(boxes: list[tuple[int, int, int]], size: int = 32) -> torch.Tensor:
    labels = torch.zeros(size, size, dtype=torch.int32)
    for k, (row, col, side) in enumerate(boxes, start=1):
        labels[row : row + side, col : col + side] = k
    return labels


def batch(ids: list[str], truth: torch.Tensor, shown: torch.Tensor) -> dict:
    image = (shown > 0).float().unsqueeze(1).expand(-1, 3, -1, -1).contiguous()
    return {"image": image, "mask": (truth > 0).float().unsqueeze(1), "labels": truth, "id": ids}


def test_validate_and_test_keep_one_row_per_image_equal_to_its_scores() -> None:
    truth = torch.stack([squares([(2, 2, 6), (20, 20, 8)]), squares([(5, 5, 10), (5, 16, 10)])])
    shown = truth.clone()
    shown[1, 5:15, 5:26] = 1  # the second image's two nuclei predicted as one
    batches = [batch(["one", "two"], truth, shown), batch(["three"], truth[:1], shown[:1])]
    task = SegmentationTask(MaskEcho(), optimizer=partial(torch.optim.Adam, lr=1e-3))
    scores = ImageScores()
    trainer = quiet_cpu_trainer(callbacks=[scores])

    metrics = trainer.validate(task, DataLoader(batches, batch_size=None), verbose=False)[0]
    assert [row["id"] for row in scores.rows] == ["one", "two", "three"]
    assert ImageScores.rows_of(trainer) is scores.rows
    expected = [image_scores(t, s) for t, s in [(truth[0], truth[0]), (truth[1], shown[1])]]
    for row, want in zip(scores.rows, [*expected, expected[0]], strict=True):
        assert (row["map"], row["n_pred"], row["n_merged"]) == (
            want["map"],
            want["n_pred"],
            want["n_merged"],
        )
        assert row["source"] is None and row["kind"] is None  # no data module: unknown
    assert np.mean([row["map"] for row in scores.rows]) == pytest.approx(metrics["val/map"])
    assert not task.val_instance_metric.record_images  # off again after the epoch

    trainer.test(task, DataLoader(batches[:1], batch_size=None), verbose=False)
    assert [row["id"] for row in scores.rows] == ["one", "two"]


def test_rows_of_a_data_module_name_the_folder_they_came_from(synthetic_root: Path) -> None:
    datamodule = flat_datamodule(root=str(synthetic_root), image_size=64, decode_workers=1)
    task = SegmentationTask(
        build_unet(base_channels=4, depth=2), optimizer=partial(torch.optim.Adam, lr=1e-3)
    )
    scores = ImageScores()
    quiet_cpu_trainer(callbacks=[scores], num_sanity_val_steps=0).validate(
        task, datamodule=datamodule, verbose=False
    )
    assert sorted(row["id"] for row in scores.rows) == sorted(datamodule.val_ids)
    assert {row["source"] for row in scores.rows} == {"stage1_train"}
    # each row says its image's kind, as the data module classified it
    assert {row["id"]: row["kind"] for row in scores.rows} == {
        i: datamodule.image_kinds[i] for i in datamodule.val_ids
    }
    assert set(datamodule.image_kinds.values()) <= {"fluorescence", "tissue", "brightfield"}
    # Rows are scored at each image's own size, not at the 64 px the network saw.
    native_labels = datamodule.val_dataset.native_labels
    native = {i: lab.shape for i, lab in zip(datamodule.val_ids, native_labels, strict=True)}
    assert {row["id"]: (row["height"], row["width"]) for row in scores.rows} == native
    assert all(shape != (64, 64) for shape in native.values())


def test_the_synthetic_set_names_each_image_family(tmp_path: Path) -> None:
    stage_dir, written = write_dataset(tmp_path, 6, 5, workers=1, progress=False)
    families = synthetic_families(6, 5)
    assert sorted(families) == sorted(p.name for p in stage_dir.iterdir())
    assert [families[image_id(5, w.index)] for w in written] == [w.family for w in written]

    cached = NucleiDataModule(source={"root": None, "synthetic_images": 6, "synthetic_seed": 5})
    assert image_sources(cached, "val") == (families, None)


def test_fit_without_the_instance_metric_keeps_no_rows() -> None:
    scores = ImageScores()
    truth = torch.stack([squares([(2, 2, 6)])])
    loader = DataLoader([batch(["x"], truth, truth)], batch_size=None)
    task = SegmentationTask(
        MaskEcho(), optimizer=partial(torch.optim.SGD, lr=0.0), map_every_n_epochs=0
    )
    trainer = quiet_cpu_trainer(
        max_epochs=1,
        callbacks=[scores],
    )
    trainer.fit(task, loader, loader)
    assert scores.rows == [] and task.val_instance_metric.image_rows == []
