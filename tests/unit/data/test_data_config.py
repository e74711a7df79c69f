"""The data config: validated groups, the schema checked at composition."""

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
