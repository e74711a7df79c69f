"""The data module of a finished run: its data config, the values given now, its split."""

from __future__ import annotations

import logging

import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from nuclei.runs.checkpoint import Run
from nuclei.runs.inherit import given_values, inherit

log = logging.getLogger(__name__)


class RunDataError(ValueError):
    """The run's data config (with the values given) does not build a data module."""


def run_data_config(
    run: Run, given: DictConfig | None = None, eval_batch_size: int | None = None
) -> DictConfig:
    """The run's data config with the values ``given`` over it, on the run's recorded split
    (and ``data.loader.eval_batch_size`` set to ``eval_batch_size`` when given).

    The split is the one given (``data.split.file``; null draws it anew), else the run's
    ``split.json``, else the file the run's config names, else drawn again from its seed.
    """
    data = inherit(run.config.data, given)
    if eval_batch_size:
        with open_dict(data):
            data.loader.eval_batch_size = int(eval_batch_size)
    if "file" in given_values(given).get("split", {}):
        return data
    if run.split_file is not None:
        data.split.file = str(run.split_file)
    elif data.split.get("file"):
        log.info("Using the split file named in the run's config: %s", data.split.file)
    else:
        log.warning(
            "No %s in %s: the split is drawn again from data.split.seed=%s "
            "(the training split only if the data are unchanged)",
            run.run_dir.split_file.name,
            run.run_dir.path,
            data.split.get("seed"),
        )
    return data


def build_run_datamodule(data_cfg: DictConfig) -> L.LightningDataModule:
    """Instantiate the data module, with a clear error when the config does not fit it."""
    try:
        return instantiate(data_cfg)
    except InstantiationException as exc:
        raise RunDataError(f"the data config does not build a data module: {exc}") from exc
