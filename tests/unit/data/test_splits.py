"""The train/val split: seeded, complete and disjoint, stratified by image kind; recorded and
read back."""

import hashlib
import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from nuclei.data.config import SizeConfig, SourceConfig, SplitConfig
from nuclei.data.datamodule import NucleiDataModule
from nuclei.data.kinds import kind_counts
from nuclei.data.splits import fold_ids, read_split, split_ids, split_record
from nuclei.synthetic.render import image_id, plan_sample

# The validation ids that split_ids drew before stratification existed (computed from that
# implementation): without kinds it must draw exactly these, or recorded runs change split.
FROZEN_VAL = {
    (10, 0.2, 0): ["id04", "id06"],
    (7, 0.3, 1): ["id00", "id05"],
    (25, 0.2, 42): ["id09", "id15", "id16", "id19", "id20"],
    (2, 0.5, 0): ["id00"],
    (3, 0.2, 5): ["id01"],
}
# sha256 of ",".join(val) for 670 ids s000..s669, fraction 0.2, seed 7.
FROZEN_670 = "422aa0fb1fa20f167294b20b972e76efc78f2d6145cd75cb9e92118dd8d470bb"


def test_split_is_80_20_disjoint_complete_and_seeded() -> None:
    ids = [f"s{i:03d}" for i in range(670)]
    train, val = split_ids(ids, 0.2, seed=7)
    assert (len(train), len(val)) == (536, 134)
    assert not set(train) & set(val) and set(train) | set(val) == set(ids)
    assert split_ids(list(reversed(ids)), 0.2, seed=7) == (train, val)  # order-independent
    assert split_ids(ids, 0.2, seed=8)[1] != val


def test_split_record_is_the_split_json_format(tmp_path: Path) -> None:
    record = split_record(tmp_path, 0.25, 3, ["a", "b", "c"], ["d"])
    assert record == {
        "root": str(tmp_path),
        "val_fraction": 0.25,
        "split_seed": 3,
        "train": ["a", "b", "c"],
        "val": ["d"],
    }
    path = tmp_path / "split.json"
    path.write_text(json.dumps(record))
    assert read_split(path, dict.fromkeys("abcd")) == (["a", "b", "c"], ["d"])
    path.write_text("{}")
    with pytest.raises(ValueError, match="not a split file with 'train' and 'val' id lists"):
        read_split(path, dict.fromkeys("abcd"))


def datamodule(root: Path, **split: object) -> NucleiDataModule:
    return NucleiDataModule(
        source=SourceConfig(root=str(root)),
        size=SizeConfig(image_size=32),
        split=SplitConfig(**split),
    )


def test_recorded_split_is_reused_and_checked(synthetic_root: Path, tmp_path: Path) -> None:
    first = datamodule(synthetic_root, seed=1)
    first.setup("fit")
    path = tmp_path / "split.json"
    path.write_text(json.dumps(first.split_record(), indent=2))
    again = datamodule(synthetic_root, seed=99, file=str(path))
    again.setup("fit")
    assert (again.train_ids, again.val_ids) == (first.train_ids, first.val_ids)
    record = json.loads(path.read_text())
    record["val"].append("not-a-sample")
    path.write_text(json.dumps(record))
    stale = datamodule(synthetic_root, file=str(path))
    with pytest.raises(ValueError, match=r"split.json: 1 recorded id.*not-a-sample"):
        stale.setup("fit")


@pytest.mark.parametrize(("n", "fraction", "seed"), sorted(FROZEN_VAL))
def test_without_kinds_the_split_is_the_one_drawn_before(
    n: int, fraction: float, seed: int
) -> None:
    ids = [f"id{i:02d}" for i in range(n)]
    train, val = split_ids(ids, fraction, seed)
    assert val == FROZEN_VAL[(n, fraction, seed)]
    assert train == sorted(set(ids) - set(val))


def test_without_kinds_670_ids_split_as_before() -> None:
    _, val = split_ids([f"s{i:03d}" for i in range(670)], 0.2, seed=7)
    assert hashlib.sha256(",".join(val).encode()).hexdigest() == FROZEN_670


def dsb_like_kinds(seed: int = 0) -> dict[str, str]:
    """670 ids with the DSB2018 stage1_train kinds (546 fluorescence, 108 tissue, 16
    brightfield), shuffled so that kinds do not follow id order."""
    kinds = ["fluorescence"] * 546 + ["tissue"] * 108 + ["brightfield"] * 16
    np.random.default_rng(seed).shuffle(kinds)
    return {f"img{i:03d}": kind for i, kind in enumerate(kinds)}


def assert_shares_kept(
    kinds: dict[str, str], fraction: float, train: list[str], val: list[str]
) -> None:
    """Disjoint, covering, the usual total, and each kind's val count within one of its share."""
    assert not set(train) & set(val) and set(train) | set(val) == set(kinds)
    assert train == sorted(train) and val == sorted(val)
    n = len(kinds)
    assert len(val) == min(max(1, round(n * fraction)), n - 1)
    on_val = kind_counts(val, kinds)
    for kind, count in Counter(kinds.values()).items():
        assert abs(on_val.get(kind, 0) - count * fraction) < 1, (kind, on_val, count)


@pytest.mark.parametrize("fraction", [0.2, 0.1, 0.25, 0.33, 0.5, 0.9])
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_stratified_split_keeps_each_kinds_share(fraction: float, seed: int) -> None:
    kinds = dsb_like_kinds(seed)
    train, val = split_ids(list(kinds), fraction, seed, kinds=kinds)
    assert_shares_kept(kinds, fraction, train, val)


def test_stratified_split_is_seeded_and_order_independent() -> None:
    kinds = dsb_like_kinds()
    ids = list(kinds)
    first = split_ids(ids, 0.2, 3, kinds=kinds)
    assert split_ids(list(reversed(ids)), 0.2, 3, kinds=dict(reversed(kinds.items()))) == first
    other = split_ids(ids, 0.2, 4, kinds=kinds)
    assert other[1] != first[1]
    # every kind is drawn anew for another seed, the rare ones too
    for kind in ("fluorescence", "tissue", "brightfield"):
        assert {i for i in other[1] if kinds[i] == kind} != {
            i for i in first[1] if kinds[i] == kind
        }


def test_the_synthetic_set_plain_split_misses_shares_that_the_stratified_keeps() -> None:
    plans = [plan_sample(0, i) for i in range(670)]  # the default synthetic set's families
    kinds = {plan.image_id: plan.family for plan in plans}
    counts = Counter(kinds.values())
    _, plain = split_ids(list(kinds), 0.2, 0)
    off = {k: abs(n - 0.2 * counts[k]) for k, n in kind_counts(plain, kinds).items()}
    assert max(off.values()) >= 3  # the seeded draw alone is off by several images
    train, val = split_ids(list(kinds), 0.2, 0, kinds=kinds)
    assert_shares_kept(kinds, 0.2, train, val)


def test_one_kind_stratified_is_the_plain_split() -> None:
    ids = [f"s{i:03d}" for i in range(50)]
    kinds = dict.fromkeys(ids, "fluorescence")
    assert split_ids(ids, 0.2, 5, kinds=kinds) == split_ids(ids, 0.2, 5)


def test_edge_cases_a_lone_kind_and_two_samples() -> None:
    kinds = {f"f{i}": "fluorescence" for i in range(10)} | {"t0": "tissue"}
    train, val = split_ids(list(kinds), 0.2, 0, kinds=kinds)
    assert "t0" in train and len(val) == 2  # 1 * 0.2 rounds to none in validation
    assert_shares_kept(kinds, 0.2, train, val)
    for seed in range(5):  # with a half split the lone image may land on either side
        assert_shares_kept(kinds, 0.5, *split_ids(list(kinds), 0.5, seed, kinds=kinds))
    pair = {"a": "fluorescence", "b": "tissue"}
    for fraction in (0.1, 0.5, 0.9):
        train, val = split_ids(["a", "b"], fraction, 0, kinds=pair)
        assert len(train) == len(val) == 1 and sorted(train + val) == ["a", "b"]
    assert split_ids(["a", "b"], 0.2, 0, kinds=dict.fromkeys("ab", "tissue"))[1] in (["a"], ["b"])
    with pytest.raises(ValueError, match=r"1 id\(s\) have no image kind: c"):
        split_ids(["a", "b", "c"], 0.2, 0, kinds=pair)


def test_split_record_counts_kinds_per_side_and_old_records_still_read(tmp_path: Path) -> None:
    kinds = {"a": "fluorescence", "b": "tissue", "c": "fluorescence", "d": "brightfield"}
    record = split_record(tmp_path, 0.25, 3, ["a", "b", "c"], ["d"], kinds=kinds)
    assert record["kinds"] == {
        "train": {"fluorescence": 2, "tissue": 1},
        "val": {"brightfield": 1},
    }
    assert "kinds" not in split_record(tmp_path, 0.25, 3, ["a"], ["d"])  # as before
    path = tmp_path / "split.json"
    path.write_text(json.dumps(record))
    assert read_split(path, dict.fromkeys("abcd")) == (["a", "b", "c"], ["d"])


def test_stratify_is_a_checked_flag() -> None:
    assert SplitConfig().stratify is True
    with pytest.raises(ValueError, match=r"data\.split\.stratify must be true or false, got 'yes'"):
        SplitConfig(stratify="yes")  # type: ignore[arg-type]


def test_setup_stratifies_by_the_images_kinds(
    synthetic_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # synthetic_root: 12 images from seed 3, 10 fluorescence, 1 tissue, 1 brightfield
    kinds = {image_id(3, i): plan_sample(3, i).family for i in range(12)}
    assert Counter(kinds.values()) == {"fluorescence": 10, "tissue": 1, "brightfield": 1}
    with caplog.at_level(logging.INFO, logger="nuclei.data.loading"):
        stratified = datamodule(synthetic_root, val_fraction=0.5, seed=2)
        stratified.setup("fit")
    assert_shares_kept(kinds, 0.5, stratified.train_ids, stratified.val_ids)
    assert kind_counts(stratified.val_ids, kinds)["fluorescence"] == 5
    assert "images per kind, train/val: brightfield" in caplog.text
    plain = datamodule(synthetic_root, val_fraction=0.5, seed=2, stratify=False)
    plain.setup("fit")
    assert (plain.train_ids, plain.val_ids) == split_ids(list(kinds), 0.5, 2)


@pytest.mark.parametrize("folds", [2, 3, 5])
def test_folds_are_disjoint_cover_every_image_and_keep_each_kind_s_share(folds: int) -> None:
    kinds = dsb_like_kinds()
    ids = list(kinds)
    vals = [fold_ids(ids, folds, i, seed=7, kinds=kinds) for i in range(folds)]
    for train, val in vals:
        assert set(train) | set(val) == set(ids) and not set(train) & set(val)
    all_val = [i for _, val in vals for i in val]
    assert sorted(all_val) == sorted(ids)  # each image validated exactly once
    sizes = [len(val) for _, val in vals]
    assert max(sizes) - min(sizes) <= 1
    for kind in set(kinds.values()):
        share = sum(1 for k in kinds.values() if k == kind) / folds
        for _, val in vals:
            assert abs(sum(1 for i in val if kinds[i] == kind) - share) <= 1


def test_folds_are_reproducible_from_the_seed_and_differ_for_another() -> None:
    kinds = dsb_like_kinds()
    ids = list(kinds)
    first = fold_ids(ids, 5, 2, seed=1, kinds=kinds)
    assert fold_ids(list(reversed(ids)), 5, 2, seed=1, kinds=kinds) == first
    assert fold_ids(ids, 5, 2, seed=2, kinds=kinds) != first
    plain = [fold_ids(ids, 4, i, seed=1)[1] for i in range(4)]
    assert sorted(i for val in plain for i in val) == sorted(ids)


def test_bad_fold_settings_are_refused() -> None:
    ids = [f"s{k}" for k in range(6)]
    with pytest.raises(ValueError, match="folds must be an integer >= 2"):
        fold_ids(ids, 1, 0, seed=0)
    with pytest.raises(ValueError, match=r"fold must be in 0\.\.2"):
        fold_ids(ids, 3, 3, seed=0)
    with pytest.raises(ValueError, match="at least 8 samples"):
        fold_ids(ids, 8, 0, seed=0)
    with pytest.raises(ValueError, match=r"data\.split\.fold must be in 0\.\.4"):
        SplitConfig(folds=5, fold=5)
    with pytest.raises(ValueError, match=r"data\.split\.folds must be an integer >= 2"):
        SplitConfig(folds=1)


def test_a_fold_of_the_data_module_is_recorded_in_split_json(synthetic_root: Path) -> None:
    folds = []
    for fold in range(3):
        dm = NucleiDataModule(
            source={"root": str(synthetic_root), "decode_workers": 1},
            size={"image_size": 32},
            split={"folds": 3, "fold": fold},
        )
        dm.setup("fit")
        record = dm.split_record()
        assert (record["folds"], record["fold"]) == (3, fold)
        assert record["val"] == dm.val_ids and sorted(record["train"] + record["val"]) == sorted(
            dm.train_ids + dm.val_ids
        )
        folds.append(set(dm.val_ids))
    assert set.union(*folds) == set(dm.train_ids + dm.val_ids)
    assert sum(len(f) for f in folds) == len(dm.train_ids) + len(dm.val_ids)
