"""NucleiDataModule: setup, loaders, recorded split and report, test splits."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from support.samples import (
    labelled_set,
    square_masks,
    write_flat,
    write_kaggle,
    write_kaggle_sample,
    write_solution,
)

from nuclei.data.config import (
    AugmentationConfig,
    LoaderConfig,
    SizeConfig,
    SourceConfig,
    SplitConfig,
)
from nuclei.data.datamodule import NucleiDataModule
from nuclei.data.sources.layouts import LayoutError


def test_setup_records_the_split_and_gives_binary_masks(synthetic_root: Path) -> None:
    dm = NucleiDataModule(
        source=SourceConfig(root=str(synthetic_root)),
        size=SizeConfig(image_size=32),
        loader=LoaderConfig(batch_size=4),
    )
    dm.setup("fit")
    assert (len(dm.train_dataset), len(dm.val_dataset)) == (10, 2)
    record = json.loads(json.dumps(dm.split_record()))  # JSON-ready, as split.json holds it
    assert sorted(record["train"] + record["val"]) == sorted(
        p.name for p in synthetic_root.iterdir()
    )
    assert (record["root"], record["val_fraction"], record["split_seed"]) == (
        str(synthetic_root),
        0.2,
        0,
    )
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 32, 32) and batch["image"].dtype == torch.float32
    assert batch["image"].min() >= 0.0 and batch["image"].max() <= 1.0
    assert batch["mask"].shape == (4, 1, 32, 32)
    assert set(batch["mask"].unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(batch["mask"][:, 0] > 0, batch["labels"] > 0)


def test_groups_may_be_mappings_as_in_a_config_rebuilt_from_a_checkpoint(tmp_path: Path) -> None:
    dm = NucleiDataModule(
        source={"root": str(tmp_path), "decode_workers": 1},
        size={"mode": "crop", "crop_size": 64},
        loader={"batch_size": 3, "pin_memory": False},
    )
    assert dm.source == SourceConfig(root=str(tmp_path), decode_workers=1)
    assert dm.size == SizeConfig(mode="crop", crop_size=64)
    assert dm.loader == LoaderConfig(batch_size=3, pin_memory=False) and not dm.pin_memory
    assert dm.augmentation == AugmentationConfig()  # None: the defaults
    with pytest.raises(ValueError, match=r"data.size has no key\(s\) 'imagesize'"):
        NucleiDataModule(size={"imagesize": 3})
    with pytest.raises(ValueError, match=r"data.size.mode must be one of \('resize', 'crop'\)"):
        NucleiDataModule(size={"mode": "tile"})


def test_synthetic_source_lives_in_the_cache(tmp_path: Path) -> None:
    dm = NucleiDataModule(source=SourceConfig(cache_dir=str(tmp_path), synthetic_images=7))
    root = dm.data_root
    assert root.name == "stage1_train" and root.parent.parent == tmp_path
    assert root.parent.name.startswith("synthetic-v") and root.parent.name.endswith("-n7-seed0")


def test_grayscale_inputs_become_three_channels(tmp_path: Path) -> None:
    image = np.zeros((32, 32), np.uint8)
    image[:, :8] = 255
    for name in ("g0", "g1"):
        write_kaggle_sample(tmp_path, name, image, square_masks((32, 32), [(4, 2, 6)]))
    dm = NucleiDataModule(
        source=SourceConfig(root=str(tmp_path)),
        size=SizeConfig(image_size=32),
        augmentation=AugmentationConfig(hflip=False),
    )
    dm.setup("fit")
    image = dm.train_dataset[0]["image"]
    assert image.shape == (3, 32, 32)
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])


def test_flat_layout_with_test_folder_gives_fit_and_test_splits(tmp_path: Path) -> None:
    write_flat(tmp_path / "train", labelled_set("a", 5), label_masks=True)
    write_flat(tmp_path / "test", labelled_set("b", 3))
    dm = NucleiDataModule(
        source=SourceConfig(root=str(tmp_path), decode_workers=1),
        size=SizeConfig(mode="crop", crop_size=16),
    )
    assert dm.has_test_split
    dm.setup("fit")  # checks the test split too, before any training step
    assert len(dm.train_ids) + len(dm.val_ids) == 5
    assert dm.test_ids == ["b0", "b1", "b2"]
    test_dataset = dm.test_dataset
    dm.setup("test")
    assert dm.test_dataset is test_dataset  # decoded once
    expected = labelled_set("b", 3)
    for k, sample_id in enumerate(dm.test_ids):  # binary masks: one instance per blob
        labels = dm.test_dataset[k]["labels"].numpy()
        assert labels.max() == 3
        np.testing.assert_array_equal(labels > 0, expected[sample_id] > 0)
    batches = list(dm.test_dataloader())
    assert [b["id"] for b in batches] == [["b0"], ["b1"], ["b2"]]


def test_kaggle_root_with_stage1_test_and_solution_csv(tmp_path: Path) -> None:
    write_kaggle(tmp_path / "train" / "stage1_train", labelled_set("a", 4))
    test_labels = labelled_set("t", 2, shape=(20, 28))
    write_kaggle(tmp_path / "elsewhere" / "stage1_test", test_labels, with_masks=False)
    csv = write_solution(tmp_path / "elsewhere" / "stage1_solution.csv", test_labels)
    dm = NucleiDataModule(
        source=SourceConfig(
            root=str(tmp_path / "train"),
            test_root=str(tmp_path / "elsewhere" / "stage1_test"),
            test_labels=str(csv),
        ),
        size=SizeConfig(mode="crop", crop_size=16),
    )
    dm.setup("test")
    assert dm.train_dataset is None and dm.test_ids == ["t0", "t1"]
    for k, sample_id in enumerate(dm.test_ids):  # the CSV's instances, exactly, at native size
        np.testing.assert_array_equal(dm.test_dataset[k]["labels"].numpy(), test_labels[sample_id])
    report = dm.data_report()["test"]
    assert report["labels"] == str(csv) and report["used"] == 2


def test_no_test_split_is_a_clear_error(tmp_path: Path) -> None:
    write_kaggle(tmp_path / "stage1_train", labelled_set("a", 3))
    dm = NucleiDataModule(source=SourceConfig(root=str(tmp_path)))
    assert not dm.has_test_split
    dm.setup(None)  # fit only: nothing to test against
    assert dm.test_dataset is None and dm.train_dataset is not None
    with pytest.raises(LayoutError, match=r"no test split: set data.source.test_root"):
        dm.setup("test")
    labels_only = NucleiDataModule(
        source=SourceConfig(root=str(tmp_path), test_labels=str(tmp_path / "s.csv"))
    )
    with pytest.raises(
        LayoutError,
        match=r"data.source.test_labels=.* is set but data.source.test_root is not",
    ):
        labels_only.setup("test")


def test_loaders_need_setup_and_follow_the_loader_settings(tmp_path: Path) -> None:
    write_kaggle(tmp_path / "stage1_train", labelled_set("a", 6))
    dm = NucleiDataModule(
        source=SourceConfig(root=str(tmp_path), decode_workers=1),
        size=SizeConfig(image_size=16),
        loader=LoaderConfig(batch_size=2, eval_batch_size=3),
    )
    with pytest.raises(RuntimeError, match=r"setup\(\) must run before asking for loaders"):
        dm.train_dataloader()
    dm.setup("fit")
    assert dm.train_dataloader().batch_size == 2 and dm.val_dataloader().batch_size == 3


def test_validating_a_recorded_split_decodes_its_validation_images_only(
    synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = {"size": SizeConfig(image_size=32), "loader": LoaderConfig(batch_size=4)}
    trained = NucleiDataModule(source=SourceConfig(root=str(synthetic_root)), **settings)
    trained.setup("fit")
    split_file = tmp_path / "split.json"
    split_file.write_text(json.dumps(trained.split_record()))

    pinned = NucleiDataModule(
        source=SourceConfig(root=str(synthetic_root)),
        split=SplitConfig(file=str(split_file)),
        **settings,
    )
    decode, asked = pinned.folders.decode, []

    def recording_decode(source, ids, report):
        asked.append(sorted(ids))
        return decode(source, ids, report)

    monkeypatch.setattr(pinned.folders, "decode", recording_decode)
    pinned.setup("validate")
    assert pinned.train_dataset is None  # nuclei-eval and nuclei-tune need no training images
    assert pinned.val_ids == trained.val_ids and len(pinned.val_dataset) == 2
    assert asked == [sorted(trained.val_ids)]
    for mine, theirs in zip(pinned.val_dataset, trained.val_dataset, strict=True):
        assert torch.equal(mine["image"], theirs["image"]) and mine["id"] == theirs["id"]
    pinned.setup("fit")  # training later decodes everything
    assert len(pinned.train_dataset) == 10 and len(pinned.val_dataset) == 2
