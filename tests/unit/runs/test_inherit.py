"""One mechanism keeps a run's values in eval, predict and tune: ??? means "the run's"."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from nuclei.data.config import DataConfig
from nuclei.instances.postprocess import PostprocessConfig
from nuclei.runs.inherit import given_values, inherit, missing_like


def test_missing_like_covers_every_option_of_the_schema() -> None:
    section = missing_like(PostprocessConfig)
    assert set(section) == set(PostprocessConfig.__dataclass_fields__)
    assert set(section.values()) == {"???"}
    data = missing_like(DataConfig)
    assert "_target_" not in data
    assert data["source"]["root"] == "???" and data["size"]["image_size"] == "???"


def test_given_values_keep_only_what_was_given_nested() -> None:
    section = OmegaConf.create({"source": {"root": "/d", "layout": "???"}, "size": {"mode": "???"}})
    assert given_values(section) == {"source": {"root": "/d"}}
    assert given_values(None) == {}


def test_inherit_puts_given_values_over_the_run() -> None:
    run = {"source": {"root": "/run", "layout": "kaggle"}, "split": {"file": "s.json"}}
    given = OmegaConf.create({"source": {"root": "/new", "layout": "???"}, "split": {"file": None}})
    merged = inherit(run, given)
    assert merged.source.root == "/new" and merged.source.layout == "kaggle"
    assert merged.split.file is None  # a given null is a value, not "keep"


@pytest.mark.parametrize("config_name", ["eval", "predict"])
def test_eval_and_predict_inherit_every_postprocess_option(config_name: str) -> None:
    with initialize_config_module(version_base="1.3", config_module="nuclei.conf"):
        cfg = compose(config_name, overrides=["ckpt_path=x", "postprocess.threshold=0.3"])
    assert set(cfg.postprocess) == set(PostprocessConfig.__dataclass_fields__)
    assert given_values(cfg.postprocess) == {"threshold": 0.3}


def test_eval_inherits_every_data_option() -> None:
    with initialize_config_module(version_base="1.3", config_module="nuclei.conf"):
        cfg = compose("eval", overrides=["ckpt_path=x", "data.source.root=/d"])
    assert given_values(cfg.data) == {"source": {"root": "/d"}}
    assert OmegaConf.is_missing(cfg.data.size, "image_size")
