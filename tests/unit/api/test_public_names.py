"""``import nuclei`` is instant and exports the notebook API; ``compose`` needs no Hydra run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

import nuclei


def test_import_nuclei_does_not_import_torch() -> None:
    code = (
        "import sys, nuclei; print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_api_names_are_exported() -> None:
    from nuclei.api import Segmenter, build_datamodule, compose, show

    assert (nuclei.Segmenter, nuclei.show) == (Segmenter, show)
    assert (nuclei.compose, nuclei.build_datamodule) == (compose, build_datamodule)
    assert {"Segmenter", "show", "compose", "build_datamodule"} <= set(dir(nuclei))
    with pytest.raises(AttributeError, match="no attribute 'Segmentor'"):
        nuclei.Segmentor  # noqa: B018


@pytest.mark.parametrize("config_name", ["train", "eval", "predict"])
def test_compose_resolves_without_a_hydra_run(config_name: str, tmp_path: Path) -> None:
    cfg = nuclei.compose(config_name, ["paths.cache_dir=" + str(tmp_path)])
    resolved = OmegaConf.to_container(cfg, resolve=True)  # raises on ${hydra:...}
    assert "hydra" not in resolved
    assert Path(resolved["paths"]["output_dir"]).parts[:2] == ("outputs", config_name)
    given = nuclei.compose(config_name, output_dir=tmp_path / "run")
    assert given.paths.output_dir == str(tmp_path / "run")
    override = nuclei.compose(config_name, [f"paths.output_dir={tmp_path}"])
    assert override.paths.output_dir == str(tmp_path)


def test_build_datamodule_builds_the_composed_data(tmp_path: Path) -> None:
    cfg = nuclei.compose("train", ["data.size.image_size=96", f"paths.cache_dir={tmp_path}"])
    datamodule = nuclei.build_datamodule(cfg)
    assert type(datamodule).__name__ == "NucleiDataModule"
