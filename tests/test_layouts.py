"""Finding samples in the Kaggle and flat layouts, with clear errors otherwise."""

from pathlib import Path

import numpy as np
import pytest
from conftest import square_masks, write_kaggle_sample
from PIL import Image

from nuclei.data.layouts import LayoutError, find_samples


def make_kaggle(root: Path, n: int = 3) -> Path:
    train = root / "stage1_train"
    for i in range(n):
        image = np.full((16, 16, 4), 255, np.uint8)
        write_kaggle_sample(train, f"id{i}", image, square_masks((16, 16), [(2, 2, 4), (9, 9, 5)]))
    return train


def test_kaggle_layout_found_from_stage1_train_or_its_parent(tmp_path: Path) -> None:
    train = make_kaggle(tmp_path)
    for root in (train, tmp_path):
        samples = find_samples(root)
        assert [s.sample_id for s in samples] == ["id0", "id1", "id2"]
        assert all(len(s.instance_masks) == 2 and s.has_instances for s in samples)


def test_flat_layout_pairs_by_id(tmp_path: Path) -> None:
    for sub in ("train/inputs", "train/masks"):
        (tmp_path / sub).mkdir(parents=True)
    for name in ("b", "a"):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / f"train/inputs/{name}.png")
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / f"train/masks/{name}.png")
    samples = find_samples(tmp_path)
    assert [s.sample_id for s in samples] == ["a", "b"]
    assert all(s.merged_mask.stem == s.sample_id and not s.has_instances for s in samples)


def test_missing_and_unknown_roots_are_named(tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match="does not exist"):
        find_samples(tmp_path / "nowhere")
    (tmp_path / "junk").mkdir()
    with pytest.raises(LayoutError, match=r"junk: no known layout.*Kaggle.*flat"):
        find_samples(tmp_path / "junk")
    with pytest.raises(ValueError, match="layout must be one of"):
        find_samples(tmp_path, layout="coco")
