"""Resize mode is scored at each image's own size: probabilities scaled back, then thresholded."""

from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from support.training import quiet_cpu_trainer
from torch import nn
from torch.utils.data import DataLoader

from nuclei.data.batches import NATIVE_LABELS, native_labels, native_maps, scale_to_size
from nuclei.instances.postprocess import PostprocessConfig, instances_from_maps
from nuclei.metrics.dsb import DSBInstanceMetric
from nuclei.training.task import SegmentationTask


class BrightnessLogits(nn.Module):
    """Logits 12 * (first channel - 0.5): a smooth map whose upsampling matters."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, :1] - 0.5) * 12.0


def resized_batch() -> dict:
    """Two 8x8 network inputs standing for images of 21x27 and 30x17 pixels."""
    native = [np.zeros((21, 27), np.int32), np.zeros((30, 17), np.int32)]
    native[0][3:9, 4:12] = 1
    native[0][12:19, 15:25] = 2
    native[1][5:14, 2:9] = 1
    native[1][18:27, 6:15] = 2
    small_labels = []
    images = []
    for labels in native:
        small = F.interpolate(
            torch.from_numpy(labels > 0).float()[None, None], size=(8, 8), mode="area"
        )[0, 0]
        images.append(small.expand(3, 8, 8))
        small_labels.append((small > 0.5).int())
    small_labels = torch.stack(small_labels)
    return {
        "image": torch.stack(images).contiguous(),
        "mask": (small_labels > 0).float().unsqueeze(1),
        "labels": small_labels,
        NATIVE_LABELS: native,
    }


def expected_native_scores(batch: dict) -> dict[str, float]:
    """Pooled IoU and DSB map of the probabilities scaled up to each image's size."""
    probs = torch.sigmoid(BrightnessLogits()(batch["image"]))
    intersection = union = 0
    metric = DSBInstanceMetric()
    for prob, truth in zip(probs, batch[NATIVE_LABELS], strict=True):
        up = F.interpolate(prob[None], size=truth.shape, mode="bilinear", align_corners=False)[0]
        predicted_fg = up[0].numpy() > 0.5
        intersection += int((predicted_fg & (truth > 0)).sum())
        union += int((predicted_fg | (truth > 0)).sum())
        metric.update([instances_from_maps(up.numpy(), PostprocessConfig())], [truth])
    return {"val/iou": intersection / union, "val/map": float(metric.compute()["map"])}


def test_scale_to_size_is_bilinear_without_corner_alignment() -> None:
    maps = torch.rand(2, 5, 7)
    expected = F.interpolate(maps[None], size=(11, 13), mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(scale_to_size(maps, (11, 13)), expected)
    assert scale_to_size(maps, (5, 7)) is maps


def test_native_maps_scale_resized_batches_and_crop_padded_ones() -> None:
    batch = resized_batch()
    maps = native_maps(batch, torch.rand(2, 2, 8, 8))
    assert [tuple(m.shape) for m in maps] == [(2, 21, 27), (2, 30, 17)]
    assert [lab.shape for lab in native_labels(batch)] == [(21, 27), (30, 17)]
    padded = {
        "labels": torch.ones(2, 32, 32, dtype=torch.int32),
        "size": torch.tensor([[20, 25], [32, 9]]),
    }
    maps = native_maps(padded, torch.rand(2, 1, 32, 32))
    assert [tuple(m.shape) for m in maps] == [(1, 20, 25), (1, 32, 9)]
    assert [lab.shape for lab in native_labels(padded)] == [(20, 25), (32, 9)]


def test_a_resized_image_is_scored_on_its_upsampled_probabilities() -> None:
    batch = resized_batch()
    task = SegmentationTask(BrightnessLogits(), optimizer=partial(torch.optim.Adam, lr=1e-3))
    loader = DataLoader([batch], batch_size=None)
    scores = quiet_cpu_trainer().validate(task, dataloaders=loader, verbose=False)[0]

    expected = expected_native_scores(batch)
    assert scores["val/iou"] == np.float32(expected["val/iou"])
    assert abs(scores["val/map"] - expected["val/map"]) < 1e-6
    assert expected["val/map"] > 0.3  # the case is not trivial: nuclei are found
    # The network-resolution figure is kept under its own name, and differs here.
    probs = torch.sigmoid(BrightnessLogits()(batch["image"]))
    small = ((probs > 0.5) & (batch["mask"] > 0)).sum() / (
        (probs > 0.5) | (batch["mask"] > 0)
    ).sum()
    assert abs(scores["val/resized/iou"] - float(small)) < 1e-6
    assert abs(scores["val/resized/iou"] - scores["val/iou"]) > 0.01
