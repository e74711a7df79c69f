"""The data config: validated groups, the schema checked at composition, old flat keys."""

from __future__ import annotations

import dataclasses

import pytest
from hydra import compose, initialize_config_module
from hydra.core.config_store import ConfigStore
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from nuclei.data.config import (
    GROUPS,
    AugmentationConfig,
    DataConfig,
    LoaderConfig,
    SizeConfig,
    SourceConfig,
    SplitConfig,
    TargetConfig,
    as_config,
)
from nuclei.data.legacy_keys import (
    LEGACY_DATA_KEYS,
    translate_legacy_override,
    upgrade_data_section,
)

# conf/data/default.yaml as it was before the groups (and as old checkpoints hold it).
FLAT_DEFAULT = {
    "_target_": "nuclei.data.datamodule.NucleiDataModule",
    "root": None,
    "layout": "auto",
    "test_root": None,
    "test_labels": None,
    "on_bad_file": "error",
    "size_mode": "resize",
    "image_size": 128,
    "crop_size": 256,
    "pad_multiple": 32,
    "batch_size": 8,
    "eval_batch_size": None,
    "val_fraction": 0.2,
    "split_seed": 0,
    "hflip": True,
    "vflip": False,
    "rot90": False,
    "brightness_contrast": False,
    "invert": False,
    "num_workers": 0,
    "pin_memory": None,
    "augmentation_seed": "${seed}",
    "synthetic_images": 670,
    "synthetic_seed": 0,
    "cache_dir": "${paths.cache_dir}",
    "decode_workers": None,
    "split_file": None,
    "target": "binary",
    "border_width": 1,
}


def compose_train(*overrides: str):
    with initialize_config_module(version_base="1.3", config_module="nuclei.conf"):
        return compose("train", overrides=list(overrides))


@pytest.mark.parametrize(
    ("group", "values", "message"),
    [
        (
            SizeConfig,
            {"mode": "foo"},
            "data.size.mode must be one of ('resize', 'crop'), got 'foo'",
        ),
        (SizeConfig, {"image_size": 0}, "data.size.image_size must be a positive integer, got 0"),
        (SizeConfig, {"crop_size": -1}, "data.size.crop_size must be a positive integer, got -1"),
        (SizeConfig, {"pad_multiple": 0}, "data.size.pad_multiple must be a positive integer"),
        (
            SizeConfig,
            {"image_size": "abc"},
            "data.size.image_size must be a positive integer, got 'abc'",
        ),
        (
            SourceConfig,
            {"layout": "coco"},
            "data.source.layout must be one of ('auto', 'kaggle', 'flat')",
        ),
        (
            SourceConfig,
            {"on_bad_file": "ignore"},
            "data.source.on_bad_file must be one of ('error', 'skip'), got 'ignore'",
        ),
        (
            SourceConfig,
            {"decode_workers": 0},
            "data.source.decode_workers must be a positive integer, got 0",
        ),
        (
            SourceConfig,
            {"synthetic_images": 0},
            "data.source.synthetic_images must be a positive integer",
        ),
        (
            AugmentationConfig,
            {"vflip": "yes"},
            "data.augmentation.vflip must be true or false, got 'yes'",
        ),
        (AugmentationConfig, {"seed": 1.5}, "data.augmentation.seed must be an integer, got 1.5"),
        (SplitConfig, {"val_fraction": 1.0}, "data.split.val_fraction must be in (0, 1), got 1.0"),
        (SplitConfig, {"val_fraction": 0}, "data.split.val_fraction must be in (0, 1), got 0"),
        (SplitConfig, {"seed": None}, "data.split.seed must be an integer, got None"),
        (
            TargetConfig,
            {"kind": "contours"},
            "data.target.kind must be one of ('binary', 'border', 'distance'), got 'contours'",
        ),
        (
            TargetConfig,
            {"border_width": 0},
            "data.target.border_width must be a positive integer, got 0",
        ),
        (
            LoaderConfig,
            {"batch_size": 0},
            "data.loader.batch_size must be a positive integer, got 0",
        ),
        (
            LoaderConfig,
            {"eval_batch_size": 0},
            "data.loader.eval_batch_size must be a positive integer",
        ),
        (LoaderConfig, {"num_workers": -1}, "data.loader.num_workers must be >= 0, got -1"),
        (
            LoaderConfig,
            {"pin_memory": "auto"},
            "data.loader.pin_memory must be true or false, got 'auto'",
        ),
    ],
)
def test_bad_values_are_named_as_users_type_them(group: type, values: dict, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        group(**values)
    assert message in str(raised.value)


def test_defaults_are_valid_and_optional_values_may_be_null() -> None:
    for group in GROUPS.values():
        group()
    SourceConfig(decode_workers=None, root="/data")
    LoaderConfig(eval_batch_size=None, pin_memory=None)
    SplitConfig(file="split.json")


def test_as_config_takes_a_dataclass_a_mapping_or_none() -> None:
    size = SizeConfig(image_size=64)
    assert as_config(SizeConfig, size) is size
    assert as_config(SizeConfig, {"image_size": 64}) == size
    assert as_config(SizeConfig, OmegaConf.create({"image_size": 64})) == size
    assert as_config(SizeConfig, None) == SizeConfig()
    with pytest.raises(ValueError, match=r"data.loader has no key\(s\) 'batchsize'; its keys"):
        as_config(LoaderConfig, {"batchsize": 4})
    with pytest.raises(TypeError, match="expected a SizeConfig or a mapping"):
        as_config(SizeConfig, 64)


def test_default_yaml_agrees_with_the_schema_and_builds_the_data_module() -> None:
    cfg = compose_train()
    assert OmegaConf.get_type(cfg.data) is DataConfig
    assert OmegaConf.get_type(cfg.data.size) is SizeConfig
    stored = OmegaConf.to_container(cfg.data, resolve=False)
    assert stored["augmentation"]["seed"] == "${seed}"
    assert stored["source"]["cache_dir"] == "${paths.cache_dir}"
    for name, group in GROUPS.items():
        defaults = dataclasses.asdict(group())
        values = {k: v for k, v in stored[name].items() if not str(v).startswith("${")}
        assert values == {k: defaults[k] for k in values}, name
    datamodule = instantiate(cfg.data)
    assert datamodule.augmentation.seed == cfg.seed
    assert datamodule.size == SizeConfig() and datamodule.split == SplitConfig()


def test_wrong_type_fails_at_composition_naming_the_key() -> None:
    with pytest.raises(ConfigCompositionException) as raised:
        compose_train("data.size.image_size=abc")
    text = f"{raised.value} {raised.value.__cause__}"
    assert "data.size.image_size" in text and "abc" in text
    with pytest.raises(ConfigCompositionException, match=r"data\.loader\.batch_size"):
        compose_train("data.loader.batch_size=many")


def test_typo_fails_at_composition_naming_the_key() -> None:
    with pytest.raises(ConfigCompositionException, match=r"data\.size\.imagesize"):
        compose_train("data.size.imagesize=3")
    with pytest.raises(ConfigCompositionException, match=r"data\.image_size"):
        compose_train("data.image_size=64")  # an old flat key is a typo now


def test_typo_in_a_config_file_fails_at_composition() -> None:
    ConfigStore.instance().store(
        group="experiment",
        name="_test_typo",
        node={"data": {"size": {"imagesize": 3}}},
        package="_global_",
    )
    with pytest.raises(ConfigCompositionException) as raised:
        compose_train("experiment=_test_typo")
    assert "imagesize" in str(raised.value) and "SizeConfig" in str(raised.value)


def test_appended_typo_fails_when_the_data_module_is_built() -> None:
    # Hydra's `+` force-adds even to a structured config; the group then refuses it.
    cfg = compose_train("+data.size.imagesize=3")
    with pytest.raises(Exception, match=r"data.size has no key\(s\) 'imagesize'"):
        instantiate(cfg.data)


# Keys added after the flat 0.1 section (issue 12): old configs simply take their defaults.
ADDED_SINCE_FLAT = {
    "source.synthetic_profile",
    "augmentation.scale",
    "augmentation.gamma",
    "augmentation.blur",
    "augmentation.noise",
    "intensity.normalize",
    "intensity.low",
    "intensity.high",
    "split.stratify",
    "split.folds",
    "split.fold",
    "split.folds_file",
    "split.groups_file",
}


def without_added_keys(grouped: dict) -> dict:
    """A grouped data section without the keys added since the flat section."""
    kept = {}
    for group, values in grouped.items():
        if not isinstance(values, dict):
            kept[group] = values
            continue
        left = {k: v for k, v in values.items() if f"{group}.{k}" not in ADDED_SINCE_FLAT}
        if left:
            kept[group] = left
    return kept


def test_legacy_table_covers_every_old_key_and_every_new_field() -> None:
    assert set(LEGACY_DATA_KEYS) == set(FLAT_DEFAULT) - {"_target_"}
    assert len(LEGACY_DATA_KEYS) == 28
    new_fields = {f"{g}.{f.name}" for g, cls in GROUPS.items() for f in dataclasses.fields(cls)}
    assert new_fields >= ADDED_SINCE_FLAT
    assert sorted(LEGACY_DATA_KEYS.values()) == sorted(new_fields - ADDED_SINCE_FLAT)


def test_upgrade_turns_the_old_flat_section_into_the_grouped_default() -> None:
    grouped = upgrade_data_section(FLAT_DEFAULT)
    default = OmegaConf.to_container(compose_train().data, resolve=False)
    assert grouped == without_added_keys(default)
    assert upgrade_data_section(grouped) == grouped  # already grouped: unchanged
    assert upgrade_data_section(OmegaConf.create(FLAT_DEFAULT)) == grouped  # ${...} kept
    flat = {**FLAT_DEFAULT, "augmentation_seed": 5, "cache_dir": "/tmp/cache"}
    datamodule = instantiate(upgrade_data_section(flat))
    assert datamodule.augmentation == AugmentationConfig(seed=5)
    assert datamodule.source == SourceConfig(cache_dir="/tmp/cache")


def test_upgrade_maps_each_old_key_and_refuses_unknown_or_contradicting_ones() -> None:
    old = {"root": "/data", "size_mode": "crop", "split_file": "s.json", "target": "border"}
    assert upgrade_data_section(old) == {
        "source": {"root": "/data"},
        "size": {"mode": "crop"},
        "split": {"file": "s.json"},
        "target": {"kind": "border"},
    }
    assert upgrade_data_section({"size": {"mode": "crop"}, "image_size": 64}) == {
        "size": {"mode": "crop", "image_size": 64}
    }
    assert upgrade_data_section({"_target_": "old.Module"}) == {
        "_target_": "nuclei.data.datamodule.NucleiDataModule"
    }
    with pytest.raises(ValueError, match=r"data\.imagesize is not a data key"):
        upgrade_data_section({"imagesize": 3})
    with pytest.raises(
        ValueError, match=r"data\.image_size=64 contradicts data\.size\.image_size=32"
    ):
        upgrade_data_section({"size": {"image_size": 32}, "image_size": 64})


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("data.root=/x", "data.source.root=/x"),
        ("+data.image_size=64", "+data.size.image_size=64"),
        ("++data.batch_size=4", "++data.loader.batch_size=4"),
        ("~data.split_file", "~data.split.file"),
        ("data.target=border,binary", "data.target.kind=border,binary"),
        ("data.size_mode=choice(resize,crop)", "data.size.mode=choice(resize,crop)"),
        ("data.augmentation_seed=${seed}", "data.augmentation.seed=${seed}"),
        ("data.split_seed=range(0,3)", "data.split.seed=range(0,3)"),
        ("data.test_labels=/a=b.csv", "data.source.test_labels=/a=b.csv"),
    ],
)
def test_legacy_overrides_are_translated_with_a_note(override: str, expected: str) -> None:
    translated, note = translate_legacy_override(override)
    assert translated == expected
    old_key = override.lstrip("+~").split("=")[0]
    new_key = expected.lstrip("+~").split("=")[0]
    assert note is not None and "\n" not in note
    assert old_key in note and new_key in note and expected in note


@pytest.mark.parametrize(
    "override",
    [
        "data.source.root=/x",
        "data.target.kind=border",
        "data.target.border_width=2",
        "+data.size.image_size=64",
        "data=default",
        "model.image_size=3",
        "trainer.max_epochs=2",
        "metadata.root=/x",
    ],
)
def test_other_overrides_are_left_alone(override: str) -> None:
    assert translate_legacy_override(override) == (override, None)


def test_translated_overrides_compose() -> None:
    old = ["data.image_size=64", "data.batch_size=4", "data.target=border", "data.root=/x"]
    cfg = compose_train(*(translate_legacy_override(o)[0] for o in old))
    assert (cfg.data.size.image_size, cfg.data.loader.batch_size) == (64, 4)
    assert (cfg.data.target.kind, cfg.data.source.root) == ("border", "/x")
