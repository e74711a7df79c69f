"""Score a trained checkpoint: ``nuclei-eval ckpt_path=PATH`` / ``python -m nuclei.cli.evaluate``.

The data module, model and postprocessing are rebuilt from the configuration stored in the
checkpoint, on the run's recorded split; ``conf/eval.yaml`` lists what may be overridden.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.callbacks import RichProgressBar
from omegaconf import DictConfig, OmegaConf

from nuclei.cli.metrics_table import print_metrics, write_metrics_json
from nuclei.cli.train import run_directory
from nuclei.instances.postprocess import PostprocessConfig
from nuclei.runs.checkpoint import (
    CheckpointError,
    Run,
    load_run,
    merge_given,
    postprocess_of,
    restore_task,
)

log = logging.getLogger(__name__)

SPLITS = ("val", "test")
METRICS_FILE = "eval_metrics.json"


class EvaluationError(ValueError):
    """The evaluation cannot run as asked (bad split, no test data...); says why."""


def evaluation_data_config(run: Run, given: DictConfig | None) -> DictConfig:
    """The run's data config with the user's overrides and the run's recorded split."""
    data = merge_given(run.config.data, given)
    split_given = given is not None and "split_file" in given
    if split_given and not OmegaConf.is_missing(given, "split_file"):
        return data
    if run.split_file is not None:
        data.split_file = str(run.split_file)
    elif data.get("split_file"):
        log.info("Using the split file named in the run's config: %s", data.split_file)
    else:
        log.warning(
            "No split.json in %s: the split is drawn again from data.split_seed=%s "
            "(the training split only if the data are unchanged)",
            run.directory,
            data.get("split_seed"),
        )
    return data


def build_datamodule(data_cfg: DictConfig) -> L.LightningDataModule:
    """Instantiate the data module, with a clear error when the config does not fit it."""
    try:
        return instantiate(data_cfg)
    except InstantiationException as exc:
        raise EvaluationError(f"the data config does not build a data module: {exc}") from exc


def provides_test_loader(datamodule: L.LightningDataModule) -> bool:
    """Whether the data module class provides a test loader at all."""
    return type(datamodule).test_dataloader is not L.LightningDataModule.test_dataloader


def _dataset_size(loaders: Any) -> int:
    loaders = loaders if isinstance(loaders, list | tuple) else [loaders]
    return sum(len(loader.dataset) for loader in loaders)


def given_values(given: DictConfig | None) -> dict[str, Any]:
    """The keys of an eval config section (``data``, ``postprocess``) given a value."""
    if given is None:
        return {}
    values = OmegaConf.to_container(given, resolve=True)
    return {key: values[key] for key in given if not OmegaConf.is_missing(given, key)}


def file_beside_checkpoint(
    run: Run,
    split: str,
    postprocess: PostprocessConfig,
    own_postprocess: PostprocessConfig,
    data_given: dict[str, Any],
) -> Path:
    """Where an evaluation's metrics go beside the checkpoint.

    ``<stem>.<split>.eval.json`` for the run's own data and postprocessing
    (``own_postprocess``: its config and tuned ``postprocess.json``); other settings add a
    digest of them (``<stem>.<split>.<digest>.eval.json``), so that evaluating one
    checkpoint several ways keeps every result.
    """
    name = f"{run.checkpoint_path.stem}.{split}"
    if data_given or postprocess != own_postprocess:
        settings = {"data": data_given, "postprocess": asdict(postprocess)}
        text = json.dumps(settings, sort_keys=True, default=str)
        name += "." + hashlib.sha256(text.encode()).hexdigest()[:8]
    return run.checkpoint_path.with_name(f"{name}.eval.json")


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Rebuild a checkpoint's run, score it on ``cfg.split``, print and write the metrics."""
    started = time.perf_counter()
    split = cfg.split
    if split not in SPLITS:
        raise EvaluationError(f"split must be one of {SPLITS}, got {split!r}")
    run = load_run(cfg.ckpt_path, trust=cfg.trust_checkpoint)
    use_tuned = cfg.get("tuned_postprocess", True)
    postprocess = postprocess_of(run, cfg.get("postprocess"), use_tuned=use_tuned)
    postprocess_given = bool(given_values(cfg.get("postprocess")))
    own_postprocess = postprocess if use_tuned and not postprocess_given else postprocess_of(run)
    task = restore_task(run, postprocess=asdict(postprocess))
    data_cfg = evaluation_data_config(run, cfg.get("data"))
    datamodule = build_datamodule(data_cfg)
    if split == "test" and not provides_test_loader(datamodule):
        raise EvaluationError(
            f"{type(datamodule).__name__} has no test split in this version; "
            "evaluate split=val, or give data.test_root/data.test_labels once it has one"
        )

    precision = cfg.trainer.precision or run.config.get("trainer", {}).get("precision", "32-true")
    trainer = L.Trainer(
        accelerator=cfg.trainer.accelerator,
        devices=cfg.trainer.devices,
        precision=precision,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=cfg.progress_bar,
        callbacks=[RichProgressBar()] if cfg.progress_bar else None,
    )
    if split == "val":
        results = trainer.validate(task, datamodule=datamodule, verbose=False)
        n_images = _dataset_size(trainer.val_dataloaders)
    else:
        results = trainer.test(task, datamodule=datamodule, verbose=False)
        n_images = _dataset_size(trainer.test_dataloaders)
    metrics = {key: float(value) for key, value in results[0].items()}

    record: dict[str, Any] = {
        **metrics,
        "split": split,
        "n_images": n_images,
        "checkpoint": str(run.checkpoint_path.resolve()),
        "data_root": str(getattr(datamodule, "data_root", data_cfg.get("root"))),
        "split_file": data_cfg.get("split_file"),
        "target": run.target,
        "postprocess": asdict(postprocess),
        "wall_time_s": round(time.perf_counter() - started, 1),
    }
    if trainer.is_global_zero:
        out_dir = run_directory(cfg)
        written = [write_metrics_json(out_dir / METRICS_FILE, record)]
        data_given = given_values(cfg.get("data"))
        beside = file_beside_checkpoint(run, split, postprocess, own_postprocess, data_given)
        try:
            written.append(write_metrics_json(beside, record))
        except OSError as exc:
            log.warning("Could not write %s beside the checkpoint: %s", beside, exc)
        title = f"{run.checkpoint_path.name}: {split} split, {n_images} images"
        print_metrics(metrics, title=title)
        for path in written:
            log.info("Metrics written to %s", path)
    return record


@hydra.main(version_base="1.3", config_path="pkg://nuclei.conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    """Hydra entry point; exits with status 2 and a one-line reason on bad input."""
    try:
        evaluate(cfg)
    except (CheckpointError, ValueError, FileNotFoundError) as exc:
        log.error("nuclei-eval: %s", exc)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
