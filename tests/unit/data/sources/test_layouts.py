"""Finding samples in the Kaggle and flat layouts (and stage1_test + its solution CSV),
with clear errors naming what is wrong."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.samples import (
    labelled_set,
    square_labels,
    square_masks,
    write_flat,
    write_kaggle,
    write_kaggle_sample,
    write_solution,
)

from nuclei.data.sources.layouts import (
    LayoutError,
    attach_solution,
    detect_layout,
    find_samples,
    find_test_split,
    scan_folder,
)
from nuclei.data.validation import DataValidationError


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
    (tmp_path / "junk" / "photos").mkdir(parents=True)
    (tmp_path / "junk" / "a.png").write_bytes(b"")
    with pytest.raises(LayoutError, match=r"junk: no known layout.*Kaggle.*flat"):
        find_samples(tmp_path / "junk")
    with pytest.raises(ValueError, match="layout must be one of"):
        find_samples(tmp_path, layout="coco")


def test_empty_root_names_the_layouts_looked_for(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".DS_Store").write_bytes(b"\0")  # hidden files do not count
    with pytest.raises(LayoutError, match=r"empty: data root is empty; looked for Kaggle.*flat"):
        find_samples(tmp_path / "empty")


def test_named_layout_that_is_not_there(tmp_path: Path) -> None:
    write_flat(tmp_path / "train", labelled_set("f", 2))
    with pytest.raises(LayoutError, match="no known layout found; looked for the kaggle layout"):
        find_samples(tmp_path, layout="kaggle")
    assert detect_layout(tmp_path, "flat") == ("flat", tmp_path / "train")


def test_community_fixed_copy_is_just_another_root(tmp_path: Path) -> None:
    fixed = write_kaggle(tmp_path / "dsb2018-fixed" / "stage1_train", labelled_set("k", 2))
    assert [s.sample_id for s in find_samples(tmp_path / "dsb2018-fixed")] == ["k0", "k1"]
    assert [s.sample_id for s in find_samples(fixed)] == ["k0", "k1"]


def test_junk_files_and_macos_debris_are_ignored(tmp_path: Path) -> None:
    train = write_kaggle(tmp_path / "stage1_train", labelled_set("k", 2))
    (train / ".DS_Store").write_bytes(b"\0")
    (train / "Thumbs.db").write_bytes(b"\0")
    (train / "notes.txt").write_text("my notes")
    (train / "k0" / "masks" / "._n1.png").write_bytes(b"\0\5\26\7")  # AppleDouble, not a PNG
    (train / "k0" / "masks" / "README").write_text("x")
    (train / "__MACOSX" / "k0" / "images").mkdir(parents=True)
    (train / "scratch").mkdir()  # a folder that is not a sample
    source = scan_folder(tmp_path)
    assert [s.sample_id for s in source.samples] == ["k0", "k1"]
    assert [p.name for p in source.samples[0].instance_masks] == ["n1.png", "n2.png", "n3.png"]
    assert {p.name for p in source.ignored} == {"Thumbs.db", "notes.txt", "README", "scratch"}
    assert not source.bad


def test_kaggle_sample_problems_are_gathered_per_sample(tmp_path: Path) -> None:
    train = write_kaggle(tmp_path, labelled_set("k", 4))
    (train / "k1" / "images" / "k1.png").unlink()  # no image
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(train / "k2" / "images" / "extra.png")
    (train / "k2" / "images" / "k2.png").rename(train / "k2" / "images" / "k2-copy.png")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(train / "k0" / "images" / "preview.png")
    (train / "k3" / "images" / "k3.png").rename(train / "k3" / "images" / "other-name.png")
    (train / "orphan" / "masks").mkdir(parents=True)  # masks without images/
    (train / "bare" / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(train / "bare" / "images" / "bare.png")
    source = scan_folder(train)
    assert sorted(source.bad) == ["k1", "k2", "orphan"]
    assert "k1/images: no image file" in source.bad["k1"]
    assert "k2/images: 2 images (extra.png, k2-copy.png), expected one" in source.bad["k2"]
    assert "orphan: has masks/ but no images/" in source.bad["orphan"]
    by_id = {s.sample_id: s for s in source.samples}
    assert by_id["k3"].image.name == "other-name.png"  # the only image: no name needed
    assert by_id["bare"].instance_masks == ()  # no masks/ folder: all background later
    assert by_id["k0"].image.name == "k0.png"  # <id>.png wins; the other is listed
    assert [p.name for p in source.ignored] == ["preview.png"]
    with pytest.raises(DataValidationError, match=r"(?s)3 problem\(s\).*k1/images: no image"):
        find_samples(train)


def test_flat_layout_pairs_by_id_not_by_order_and_across_suffixes(tmp_path: Path) -> None:
    flat = write_flat(tmp_path / "train", labelled_set("f", 3))
    # Renaming changes the listing order of inputs/ but not of masks/.
    (flat / "inputs" / "f0.png").rename(flat / "inputs" / "z.png")
    (flat / "masks" / "f0.png").rename(flat / "masks" / "z.tif")
    (flat / "masks" / "lonely.png").write_bytes((flat / "masks" / "f1.png").read_bytes())
    source = scan_folder(tmp_path)
    assert [(s.sample_id, s.image.name, s.merged_mask.name) for s in source.samples] == [
        ("f1", "f1.png", "f1.png"),
        ("f2", "f2.png", "f2.png"),
        ("z", "z.png", "z.tif"),
    ]
    assert any(
        "1 mask(s) without an image in inputs/ ignored: lonely.png" in n for n in source.notes
    )


def test_flat_images_without_a_mask_and_duplicate_ids(tmp_path: Path) -> None:
    flat = write_flat(tmp_path, labelled_set("f", 3))
    (flat / "masks" / "f0.png").unlink()
    (flat / "inputs" / "f1.jpg").write_bytes(b"")  # a second image for id f1
    source = scan_folder(tmp_path)
    assert {s.sample_id: s.merged_mask for s in source.samples}["f0"] is None
    assert list(source.bad) == ["f1"] and "2 image files for id f1" in source.bad["f1"]


def test_flat_masks_named_differently_fail_with_examples(tmp_path: Path) -> None:
    flat = write_flat(tmp_path, labelled_set("f", 2))
    for mask in sorted((flat / "masks").iterdir()):
        mask.rename(mask.with_name(mask.stem + "_mask.png"))
    with pytest.raises(LayoutError, match=r"no mask in masks/ has the id.*f0_mask"):
        scan_folder(tmp_path)


def test_kaggle_test_split_takes_labels_from_the_solution_csv(tmp_path: Path) -> None:
    labels = labelled_set("t", 2)
    test = write_kaggle(tmp_path / "stage1_test", labels, with_masks=False)
    csv = write_solution(tmp_path / "stage1_solution.csv", labels)
    source = attach_solution(scan_folder(tmp_path, split="test"), csv)
    assert source.base == test and source.labels == csv
    assert [(s.sample_id, len(s.solution.rows)) for s in source.samples] == [("t0", 3), ("t1", 3)]


def test_solution_ids_must_match_the_images(tmp_path: Path) -> None:
    write_kaggle(tmp_path / "stage1_test", labelled_set("t", 3), with_masks=False)
    others = {"t0": square_labels((24, 24), 0), "ghost": square_labels((24, 24), 1)}
    csv = write_solution(tmp_path / "s.csv", others)
    with pytest.raises(DataValidationError) as raised:
        attach_solution(scan_folder(tmp_path / "stage1_test", split="test"), csv)
    message = str(raised.value)
    assert "s.csv: 1 image id(s) have rows but no image" in message and "ghost" in message
    assert "s.csv: no rows for 2 image(s)" in message and "t1, t2" in message


def test_malformed_solution_rows_mark_their_image_bad(tmp_path: Path) -> None:
    write_kaggle(tmp_path / "stage1_test", labelled_set("t", 2), with_masks=False)
    csv = write_solution(tmp_path / "s.csv", labelled_set("t", 2))
    csv.write_text(csv.read_text() + "t1,5 1 7,24,24,Public\n")
    source = attach_solution(scan_folder(tmp_path, split="test"), csv)
    assert [s.sample_id for s in source.samples] == ["t0"]
    assert "s.csv line 8 (image t1): odd number of values" in source.bad["t1"]


def test_test_split_is_found_next_to_the_training_data(tmp_path: Path) -> None:
    flat_root = tmp_path / "flat"
    write_flat(flat_root / "train", labelled_set("a", 2))
    assert find_test_split(flat_root) is None
    write_flat(flat_root / "test", labelled_set("b", 2))
    assert find_test_split(flat_root) == (flat_root / "test", None)
    kaggle_root = tmp_path / "kaggle"
    write_kaggle(kaggle_root / "stage1_train", labelled_set("a", 2))
    write_kaggle(kaggle_root / "stage1_test", labelled_set("b", 2), with_masks=False)
    assert find_test_split(kaggle_root) is None  # no labels: not a usable test split
    csv = write_solution(kaggle_root / "stage1_solution.csv", labelled_set("b", 2))
    assert find_test_split(kaggle_root) == (kaggle_root / "stage1_test", csv)


@pytest.mark.parametrize("twin_name", ["k1.png", "k1.tif", "k1.jpg"])
def test_an_image_id_in_two_kaggle_samples_is_an_error_naming_both_files(
    tmp_path: Path, twin_name: str
) -> None:
    train = write_kaggle(tmp_path / "stage1_train", labelled_set("k", 3))
    original = train / "k1" / "images" / "k1.png"
    twin = train / "k1-copy" / "images" / twin_name
    twin.parent.mkdir(parents=True)
    Image.open(original).convert("RGB").save(twin)
    with pytest.raises(DataValidationError) as refused:
        scan_folder(tmp_path, layout="auto")
    message = str(refused.value)
    assert f"{original} and {twin}" in message and "image id k1" in message
    with pytest.raises(DataValidationError, match="image id k1"):
        find_samples(train)


def test_a_sample_folder_named_like_another_samples_image_is_an_error(tmp_path: Path) -> None:
    train = write_kaggle(tmp_path, labelled_set("k", 3))
    (train / "k2" / "images" / "k2.png").rename(train / "k2" / "images" / "k0.png")
    with pytest.raises(DataValidationError, match=r"k0/images/k0.png and .*k2/images/k0.png"):
        scan_folder(train)


def test_flat_images_of_one_id_in_two_formats_are_an_error_naming_both(tmp_path: Path) -> None:
    flat = write_flat(tmp_path, labelled_set("f", 3))
    Image.open(flat / "inputs" / "f1.png").save(flat / "inputs" / "f1.tif")
    with pytest.raises(DataValidationError, match=r"2 image files for id f1: f1.png, f1.tif"):
        find_samples(tmp_path)
