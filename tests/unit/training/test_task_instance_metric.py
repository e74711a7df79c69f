"""The task's DSB instance metric: wired to the batch's labels, cropped to each image's size."""

from functools import partial

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader

from nuclei.training.task import SegmentationTask


class MaskEcho(nn.Module):
    """A 'network' whose logits are +10 where the first image channel is 1, else -10."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))  # the optimizer needs a parameter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, :1] - 0.5) * 20.0


def labelled_squares(height: int, width: int, boxes: list[tuple[int, int, int]]) -> torch.Tensor:
    labels = torch.zeros(height, width, dtype=torch.int32)
    for k, (row, col, side) in enumerate(boxes, start=1):
        labels[row : row + side, col : col + side] = k
    return labels


def batch_from(labels: torch.Tensor, image_labels: torch.Tensor | None = None) -> dict:
    """A batch whose image shows ``image_labels`` (default: the labels) as foreground."""
    shown = labels if image_labels is None else image_labels
    image = (shown > 0).float().unsqueeze(1).expand(-1, 3, -1, -1).contiguous()
    return {"image": image, "mask": (labels > 0).float().unsqueeze(1), "labels": labels}


def validate(task: SegmentationTask, batches: list[dict]) -> dict[str, float]:
    trainer = L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    loader = DataLoader(batches, batch_size=None)  # each item is already a batch
    return trainer.validate(task, dataloaders=loader, verbose=False)[0]


def make_task() -> SegmentationTask:
    return SegmentationTask(MaskEcho(), optimizer=partial(torch.optim.Adam, lr=1e-3))


def test_perfect_predictions_score_one_and_a_merge_scores_less() -> None:
    labels = torch.stack(
        [
            labelled_squares(32, 32, [(2, 2, 6), (20, 20, 8)]),
            labelled_squares(32, 32, [(5, 5, 10), (5, 16, 10)]),  # one column apart
        ]
    )
    metrics = validate(make_task(), [batch_from(labels)])
    assert metrics["val/map"] == 1.0 and metrics["val/f1"] == 1.0
    assert metrics["val/count_error"] == 0.0 and metrics["val/n_merged"] == 0.0

    # The second image's two nuclei predicted as one block: merged, missed, scored lower.
    merged = labels.clone()
    merged[1, 5:15, 5:26] = 1
    metrics = validate(make_task(), [batch_from(labels, image_labels=merged)])
    assert metrics["val/n_merged"] == 1.0
    assert metrics["val/map"] == 0.5  # image 1 scores 1, image 2 scores 0


def test_padding_of_a_whole_image_batch_is_cropped_off() -> None:
    """Crop-mode batches pad images to one size and say each image's own ``size``."""
    labels = labelled_squares(24, 40, [(2, 2, 6)])
    labels_padded = labels.clone()
    labels_padded[:, 30:] = 0  # the image is 24x30; columns 30+ are padding
    shown = labels.clone()
    shown[10:16, 32:38] = 2  # mirrored content in the padding looks like a nucleus
    batch = batch_from(labels_padded[None], image_labels=shown[None])
    assert validate(make_task(), [batch])["val/map"] < 1.0  # without the size: a false one
    batch["size"] = torch.tensor([[24, 30]])
    assert validate(make_task(), [batch])["val/map"] == 1.0
