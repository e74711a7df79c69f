"""The packaged Hydra configs in a notebook: compose one, build its data module.

>>> cfg = compose("train", ["model=smp_unet", "data.source.root=/data/stage1_train"])
>>> datamodule = build_datamodule(cfg)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_module
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

import nuclei.runs.resume  # noqa: F401  (registers the resolvers the run folders use)
from nuclei.data.datamodule import NucleiDataModule

#: The interpolation of ``paths.output_dir`` that only a Hydra run can resolve.
HYDRA_OUTPUT_DIR = "${hydra:runtime.output_dir}"


def compose(
    config_name: str = "train",
    overrides: Sequence[str] = (),
    output_dir: str | Path | None = None,
) -> DictConfig:
    """Compose a packaged config (``train``, ``eval``, ``predict``) with command-line style
    ``overrides``, outside any Hydra run.

    ``paths.output_dir`` (Hydra's run folder in a command) becomes ``output_dir``, else an
    override of it, else the folder the command would have made
    (``outputs/<task>/<time>``), so every interpolation resolves. The result can be passed
    to ``nuclei.cli.train.main(cfg)`` and the other commands' ``main``.
    """
    with initialize_config_module(version_base="1.3", config_module="nuclei.conf"):
        cfg = hydra_compose(config_name, overrides=list(overrides), return_hydra_config=True)
    run_dir = cfg.hydra.run.dir
    with open_dict(cfg):
        del cfg["hydra"]
        if output_dir is not None:
            cfg.paths.output_dir = str(output_dir)
        elif OmegaConf.to_container(cfg.paths)["output_dir"] == HYDRA_OUTPUT_DIR:
            cfg.paths.output_dir = str(run_dir)
    return cfg


def build_datamodule(cfg: DictConfig) -> NucleiDataModule:
    """The data module ``cfg.data`` describes (call ``setup("fit")`` to read the data)."""
    return instantiate(cfg.data)
