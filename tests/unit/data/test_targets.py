"""Instance targets (nuclei.data.targets): borders, distances, augmentation, flat layout."""

from __future__ import annotations

from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import torch
from support.samples import labelled_set, write_flat

from nuclei.data.config import SizeConfig, SourceConfig, TargetConfig
from nuclei.data.datamodule import NucleiDataModule
from nuclei.data.dataset import NucleiDataset, pad_collate
from nuclei.data.sources.layouts import LayoutError
from nuclei.data.targets import border_band, distance_map, make_target, target_channels


def touching_squares() -> np.ndarray:
    """Two 4x4 squares side by side (touching along a column), a third one apart."""
    labels = np.zeros((10, 14), np.int32)
    labels[2:6, 1:5] = 1
    labels[2:6, 5:9] = 2  # touches square 1 along columns 4 | 5
    labels[2:6, 11:14] = 3  # two background columns away from square 2
    return labels


def test_border_is_the_band_where_two_nuclei_touch() -> None:
    labels = touching_squares()
    band = border_band(labels, width=1)
    expected = np.zeros_like(band)
    # Both sides of the contact (columns 4 | 5), and the background pixel just above and
    # below each end of it, whose 3x3 window still sees both squares.
    expected[1:7, 4:6] = True
    np.testing.assert_array_equal(band, expected)
    # Edges against background and the lone square are never border.
    assert not band[:, 9:].any() and not band[2:6, 1:3].any()


def test_border_width_and_gaps() -> None:
    labels = np.zeros((8, 20), np.int32)
    labels[2:6, 2:6] = 1
    labels[2:6, 7:11] = 2  # a one-pixel gap (column 6)
    labels[2:6, 14:18] = 3  # three pixels from square 2
    one = border_band(labels, width=1)
    assert one[2:6, 6].all() and not one[2:6, 5].any()  # the gap only
    assert not one[:, 11:].any()
    two = border_band(labels, width=2)
    assert two[2:6, 5:8].all() and two[2:6, 12].all()  # now squares 2 and 3 are close too
    assert not border_band(np.zeros((5, 5), np.int32)).any()
    with pytest.raises(ValueError, match="width"):
        border_band(labels, width=0)


def test_make_target_channels_and_distance() -> None:
    labels = touching_squares()
    binary = make_target(labels, "binary")
    border = make_target(labels, "border")
    distance = make_target(labels, "distance")
    assert binary.shape == (1, 10, 14) and border.shape == distance.shape == (2, 10, 14)
    assert binary.dtype == border.dtype == np.float32
    for target in (binary, border, distance):
        np.testing.assert_array_equal(target[0], labels > 0)
    np.testing.assert_array_equal(border[1], border_band(labels))
    dist = distance_map(labels)
    assert dist.max() == pytest.approx(1.0) and (dist[labels == 0] == 0).all()
    for k in (1, 2, 3):
        assert dist[labels == k].max() == pytest.approx(1.0)  # each nucleus peaks at 1
    assert target_channels("binary") == 1 and target_channels("border") == 2
    with pytest.raises(ValueError, match="binary"):
        make_target(labels, "edges")


def test_augmented_targets_move_with_the_image() -> None:
    labels = np.zeros((16, 16), np.int32)
    labels[2:8, 3:9] = 1
    labels[2:8, 9:12] = 2  # touching
    labels[10:14, 1:5] = 3
    image = np.dstack([labels * 60] * 3).astype(np.uint8)  # the picture encodes the labels
    transform = A.Compose(
        [A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5), A.RandomRotate90(p=1.0)], seed=1
    )
    dataset = NucleiDataset(image[None], labels[None], ["s"], transform, target="border")
    for _ in range(8):
        sample = dataset[0]
        seen = (sample["image"][0] * 255).round().long() // 60  # labels as the image shows them
        np.testing.assert_array_equal(sample["labels"].numpy(), seen.numpy())
        expected = make_target(sample["labels"].numpy(), "border")
        np.testing.assert_array_equal(sample["target"].numpy(), expected)
        assert torch.equal(sample["mask"][0], sample["target"][0])
    padded = pad_collate([dataset[0], dataset[0]], multiple=32)
    assert padded["target"].shape == (2, 2, 32, 32) and not padded["target"][..., 16:, :].any()


def test_binary_dataset_has_no_target_key() -> None:
    labels = np.zeros((1, 8, 8), np.int32)
    sample = NucleiDataset(np.zeros((1, 8, 8, 3), np.uint8), labels, ["s"])[0]
    assert "target" not in sample


def test_flat_binary_masks_refuse_an_instance_target(tmp_path: Path) -> None:
    root = write_flat(tmp_path / "flat" / "train", labelled_set("f", 4)).parent
    source, size = SourceConfig(root=str(root)), SizeConfig(image_size=32)
    NucleiDataModule(source, size, target=TargetConfig(kind="binary")).setup("fit")  # fine
    datamodule = NucleiDataModule(source, size, target=TargetConfig(kind="border"))
    with pytest.raises(LayoutError) as caught:
        datamodule.setup("fit")
    message = str(caught.value)
    assert "data.target.kind=border" in message and "4 mask(s)" in message
    assert str(root / "train" / "masks" / "f0.png") in message
    assert "connected component" in message and "label images" in message
    with pytest.raises(ValueError, match=r"data.target.kind must be one of .*'contours'"):
        NucleiDataModule(source, target={"kind": "contours"})


def test_flat_label_images_train_an_instance_target_with_their_exact_nuclei(
    tmp_path: Path,
) -> None:
    truth = labelled_set("f", 4)
    for labels in truth.values():  # two nuclei that touch: one connected component
        labels[2:6, 2:5], labels[2:6, 5:8] = 90, 91
    root = write_flat(tmp_path / "flat" / "train", truth, label_masks=True).parent
    source = SourceConfig(root=str(root))
    datamodule = NucleiDataModule(
        source, SizeConfig(mode="crop", crop_size=32), target=TargetConfig(kind="border")
    )
    datamodule.setup("fit")
    dataset = datamodule.val_dataset
    for k, sample_id in enumerate(datamodule.val_ids):
        labels = dataset[k]["labels"].numpy()
        expected = truth[sample_id]
        assert len(np.unique(labels)) == len(np.unique(expected))  # every nucleus kept apart
        target = dataset[k]["target"].numpy()
        assert target[1][2:6, 4:6].any()  # the border between the touching pair is learnt


@pytest.mark.parametrize("model", ["unet", "smp_unet"])
def test_model_output_channels_follow_the_target(model: str) -> None:
    from hydra import compose, initialize_config_module
    from hydra.utils import instantiate

    for target, channels in (("binary", 1), ("distance", 2), ("border", 2)):
        with initialize_config_module(version_base="1.3", config_module="nuclei.conf"):
            cfg = compose("train", overrides=[f"model={model}", f"data.target.kind={target}"])
        assert cfg.task.target == target
        key = "out_channels" if model == "unet" else "classes"
        assert cfg.model[key] == channels
    with torch.no_grad():  # the border config's network really has two outputs
        out = instantiate(cfg.model).eval()(torch.zeros(1, 3, 32, 32))
    assert out.shape == (1, 2, 32, 32)
