"""Build a run's model from its config, and rebuild a finished run from its checkpoint.

``nuclei-train`` builds the task with :func:`build_task`; ``nuclei-eval`` and
``nuclei-predict`` name only a checkpoint and get back the configuration it was trained with
(:func:`load_run`), the very train/val split (``split.json`` beside ``checkpoints/``) and
the trained weights (:func:`restore_task`).
"""

from __future__ import annotations

import json
import logging
import pickle
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from nuclei.instances.postprocess import PostprocessConfig
from nuclei.training.task import SegmentationTask

log = logging.getLogger(__name__)

#: Checkpoint entry holding the resolved training configuration (see SegmentationTask).
CONFIG_KEY = "nuclei_config"
#: Tuned postprocessing settings of a run (scripts/tune_postprocess.py), in its directory.
TUNED_POSTPROCESS_FILE = "postprocess.json"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or not a nuclei training checkpoint."""


@dataclass
class Run:
    """A finished training run as found from one of its checkpoints."""

    checkpoint_path: Path
    checkpoint: dict[str, Any]
    config: DictConfig
    directory: Path

    @property
    def target(self) -> str:
        """What the network was trained to predict (``data.target``; ``binary`` for old runs)."""
        task = self.config.get("task") or {}
        return str(task.get("target") or self.config.data.get("target") or "binary")

    @property
    def tuned_postprocess_file(self) -> Path:
        """Where tuned postprocessing settings of this run live (may not exist)."""
        return self.directory / TUNED_POSTPROCESS_FILE

    @property
    def split_file(self) -> Path | None:
        """The run's recorded train/val split (``split.json``), if it is there."""
        path = self.directory / "split.json"
        return path if path.is_file() else None


def build_task(cfg: DictConfig, **overrides: Any) -> SegmentationTask:
    """The task of a run config: network, optimizer and scheduler factories, task settings."""
    net = instantiate(cfg.model)
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    return instantiate(
        cfg.task, net=net, optimizer=instantiate(cfg.optimizer), scheduler=scheduler, **overrides
    )


def run_directory_of(checkpoint_path: Path) -> Path:
    """The run directory of a checkpoint: the folder holding ``checkpoints/``, else its own."""
    parent = checkpoint_path.parent
    return parent.parent if parent.name == "checkpoints" else parent


def _last_words(exc: BaseException) -> str:
    """The most specific line of a (possibly long) error message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    specific = [line for line in lines if "error" in line.lower() or "unsupported" in line.lower()]
    return (specific or lines or [type(exc).__name__])[-1]


def read_checkpoint(path: str | Path, trust: bool = False) -> dict[str, Any]:
    """Load a Lightning checkpoint onto the CPU, refusing pickled code unless ``trust``.

    ``weights_only=True`` (the default here) only unpickles tensors and plain containers, so
    a foreign file cannot run code while it loads. Raises :class:`CheckpointError` naming
    the file when it is missing, unreadable or holds no ``state_dict``.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint file not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: is not a file (expected a .ckpt checkpoint file)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if found and not trust:
            raise CheckpointError(
                f"{path}: cannot be loaded safely with weights_only=True: it holds a pickled "
                f"{found.group(1)}. If you trust this file, pass trust_checkpoint=true."
            ) from exc
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({_last_words(exc)})") from exc
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({_last_words(exc)})") from exc
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(
            f"{path}: not a Lightning checkpoint (no 'state_dict' entry); "
            "expected a .ckpt written by nuclei-train"
        )
    return checkpoint


def _config_beside(run_dir: Path) -> DictConfig | None:
    """The run's ``.hydra/config.yaml``, resolved with ``paths.output_dir`` = ``run_dir``."""
    path = run_dir / ".hydra" / "config.yaml"
    if not path.is_file():
        return None
    cfg = OmegaConf.load(path)
    if not isinstance(cfg, DictConfig):
        return None
    if "paths" in cfg:
        cfg.paths.output_dir = str(run_dir)  # was ${hydra:runtime.output_dir}
    return OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))


def load_run(checkpoint_path: str | Path, trust: bool = False) -> Run:
    """Read a checkpoint and the configuration it was trained with.

    The configuration is the one stored in the checkpoint by ``nuclei-train``; for a
    checkpoint without it, the run directory's ``.hydra/config.yaml``. Raises
    :class:`CheckpointError` when neither exists.
    """
    path = Path(checkpoint_path).expanduser()
    checkpoint = read_checkpoint(path, trust=trust)
    run_dir = run_directory_of(path)
    stored = checkpoint.get(CONFIG_KEY)
    if isinstance(stored, Mapping):
        cfg = OmegaConf.create(dict(stored))
    else:
        beside = _config_beside(run_dir)
        if beside is None:
            raise CheckpointError(
                f"{path}: holds no training configuration ('{CONFIG_KEY}') and there is no "
                f"{run_dir / '.hydra' / 'config.yaml'} beside it; was it written by nuclei-train?"
            )
        log.warning("%s holds no stored config; using %s/.hydra/config.yaml", path, run_dir)
        cfg = beside
    for key in ("data", "model", "task", "optimizer"):
        if key not in cfg:
            raise CheckpointError(f"{path}: its stored configuration has no '{key}' section")
    return Run(checkpoint_path=path, checkpoint=checkpoint, config=cfg, directory=run_dir)


def restore_task(run: Run, **overrides: Any) -> SegmentationTask:
    """Rebuild the run's task from its config and load the trained weights (eval mode)."""
    try:
        task = build_task(run.config, **overrides)
    except InstantiationException as exc:
        raise CheckpointError(
            f"{run.checkpoint_path}: its stored configuration does not build a model with this "
            f"version of nuclei ({exc})"
        ) from exc
    try:
        task.load_state_dict(run.checkpoint["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"{run.checkpoint_path}: its weights do not fit the model its configuration "
            f"describes ({str(exc).splitlines()[0]})"
        ) from exc
    task.run_config = OmegaConf.to_container(run.config, resolve=True)  # type: ignore[assignment]
    return task.eval()


def merge_given(base: DictConfig, given: DictConfig | None) -> DictConfig:
    """``base`` with every key of ``given`` that has a value (``???`` keys are skipped)."""
    merged = OmegaConf.create(OmegaConf.to_container(base, resolve=True))
    if given is None:
        return merged
    for key in given:
        if not OmegaConf.is_missing(given, key):
            merged[key] = given[key]
    return merged


def read_tuned_postprocess(path: Path) -> dict[str, Any]:
    """The ``settings`` of a tuned-postprocessing file (``postprocess.json``)."""
    try:
        record = json.loads(path.read_text())
        settings = dict(record["settings"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a tuned postprocessing file ({exc})") from exc
    return settings


def postprocess_of(
    run: Run, given: DictConfig | None = None, use_tuned: bool = True
) -> PostprocessConfig:
    """The run's postprocessing settings, from lowest to highest precedence: the defaults,
    the run's config (as its task used them), the run's tuned ``postprocess.json`` (when
    ``use_tuned`` and it exists), then ``given``."""
    stored = run.config.task.get("postprocess") or run.config.get("postprocess")
    base = OmegaConf.create(asdict(PostprocessConfig()))
    if stored is not None:
        base = OmegaConf.merge(base, stored)
    tuned = run.tuned_postprocess_file
    if use_tuned and tuned.is_file():
        base = OmegaConf.merge(base, read_tuned_postprocess(tuned))
        log.info("Using the tuned postprocessing of %s", tuned)
    merged = merge_given(base, given)
    try:
        return PostprocessConfig(**OmegaConf.to_container(merged))  # type: ignore[arg-type]
    except TypeError as exc:
        raise ValueError(f"postprocess: {exc}") from exc
