"""The package in a notebook: compose a packaged Hydra config, build its data module, and
look at a segmentation (nucleus outlines over the image).

>>> cfg = compose("train", ["model=smp_unet", "data.source.root=/data/stage1_train"])
>>> datamodule = build_datamodule(cfg)
>>> show(image, seg.segment(image))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from hydra import compose as hydra_compose
from hydra import initialize_config_module
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

import nuclei.runs.run_folder  # noqa: F401  (registers the resolvers the run folders use)
from nuclei.data.datamodule import NucleiDataModule
from nuclei.inference.image_files import as_network_image
from nuclei.inference.output_files import overlay_outlines

if TYPE_CHECKING:
    from matplotlib.axes import Axes


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


def show(
    image: np.ndarray,
    labels: np.ndarray,
    ax: Axes | None = None,
    channel: int | None = None,
) -> Axes:
    """Draw ``labels``' outlines over ``image`` (as the network saw it) on a matplotlib Axes.

    ``ax`` defaults to a new figure's; ``channel`` picks a plane of a stack as in
    :meth:`nuclei.Segmenter.segment`. Returns the Axes, titled with the number of nuclei.
    """
    import matplotlib.pyplot as plt  # here: importing pyplot picks a backend

    picture = as_network_image(image, channel)
    labels = np.asarray(labels)
    if labels.shape != picture.shape[:2]:
        raise ValueError(f"labels {labels.shape} do not match the image {picture.shape[:2]}")
    if ax is None:
        _, ax = plt.subplots()
    ax.imshow(overlay_outlines(picture, labels))
    count = np.unique(labels[labels > 0]).size
    ax.set_title(f"{count} nuclei")
    ax.set_axis_off()
    return ax
