"""A finished run as rebuilt from one of its checkpoints: configuration, weights, files.

``nuclei-eval``, ``nuclei-predict`` and ``nuclei-tune`` name only a checkpoint and get back
the configuration it was trained with (:func:`load_run`, through :func:`stored_run_config`),
the run's folder (its ``split.json``, tuned postprocessing) and the trained task
(:func:`restore_task`). ``nuclei-train`` stores the configuration with
:class:`StoreRunConfig`.

What a stored configuration may build: the ``_target_``s of the package's own configs. A
checkpoint (and a run folder's ``.hydra/config.yaml``) carries the configuration its run
was trained with, and eval, predict, tune, resume and the API build the run again from it
with Hydra's ``instantiate``, which imports and calls whatever a ``_target_`` names. A file
from elsewhere could name any function (``pandas.read_pickle``, ``numpy.load``,
``torch.load`` of inline bytes), nested in any value. So a stored configuration is read as
plain values only: every ``_target_`` in it must be one that this package's own configs
(``conf/`` and the data schema) name, or named before its class moved
(:data:`MOVED_TARGETS`), or a ``torch.optim`` optimizer or learning-rate scheduler class;
anything else needs the user's explicit ``trust_checkpoint=true`` (:func:`checked_run_config`).
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import pickle
import re
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf

from nuclei.data.config import DATA_MODULE
from nuclei.instances.postprocess import PostprocessConfig
from nuclei.runs.inherit import inherit
from nuclei.runs.run_dir import RunDir
from nuclei.training.task import SegmentationTask

log = logging.getLogger(__name__)

#: Checkpoint entry holding the run's resolved configuration.
CONFIG_KEY = "nuclei_config"
#: Sections every stored configuration must have.
REQUIRED_SECTIONS = ("data", "task")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or not a nuclei training checkpoint."""


@dataclass
class Run:
    """A finished training run as found from one of its checkpoints."""

    checkpoint_path: Path
    checkpoint: dict[str, Any]
    config: DictConfig
    run_dir: RunDir

    @property
    def target(self) -> str:
        """What the network was trained to predict (``binary``, ``border``, ``distance``)."""
        return str(self.config.task.get("target") or "binary")

    @property
    def split_file(self) -> Path | None:
        """The run's recorded train/val split, if it is there."""
        path = self.run_dir.split_file
        return path if path.is_file() else None


class StoreRunConfig(Callback):
    """Store the run's resolved configuration in every checkpoint (under ``CONFIG_KEY``),
    so that a checkpoint alone rebuilds its run."""

    def __init__(self, config: DictConfig | Mapping[str, Any]) -> None:
        super().__init__()
        self.config = (
            OmegaConf.to_container(config, resolve=True)
            if OmegaConf.is_config(config)
            else dict(config)
        )

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Add the configuration to the checkpoint being written."""
        checkpoint[CONFIG_KEY] = self.config


def _last_words(exc: BaseException) -> str:
    """The most specific line of a (possibly long) error message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    specific = [line for line in lines if "error" in line.lower() or "unsupported" in line.lower()]
    return (specific or lines or [type(exc).__name__])[-1]


def _unpickling_refusal(path: Path, exc: pickle.UnpicklingError, trust: bool) -> str:
    """Why ``path`` did not unpickle: code refused by ``weights_only`` (with the way to
    trust it), or not a checkpoint at all."""
    if not trust and zipfile.is_zipfile(path):  # torch.save's format: a checkpoint with code
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        what = f"a pickled {found.group(1)}" if found else "pickled objects beyond tensors"
        return (
            f"{path}: refused: it holds {what}, which could run code while loading. "
            "If you trust this file, pass trust_checkpoint=true."
        )
    return f"{path}: not a PyTorch checkpoint ({_last_words(exc)})"


def read_checkpoint(path: str | Path, trust: bool = False, mmap: bool = False) -> dict[str, Any]:
    """Load a Lightning checkpoint onto the CPU, refusing pickled code unless ``trust``.

    ``mmap``: map the tensors from the file instead of reading them (for a look at the
    bookkeeping entries without paying for the weights).

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
        checkpoint = torch.load(path, map_location="cpu", weights_only=not trust, mmap=mmap)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(_unpickling_refusal(path, exc, trust)) from exc
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({_last_words(exc)})") from exc
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(
            f"{path}: not a Lightning checkpoint (no 'state_dict' entry); "
            "expected a .ckpt written by nuclei-train"
        )
    return checkpoint


def read_run_config(run_dir: RunDir) -> DictConfig | None:
    """The run's saved ``.hydra/config.yaml`` (resolved with the run's folder as
    ``paths.output_dir``), or None when there is none."""
    path = run_dir.config_file
    if not path.is_file():
        return None
    cfg = OmegaConf.load(path)
    if not isinstance(cfg, DictConfig):
        return None
    if "paths" in cfg:
        cfg.paths.output_dir = str(run_dir.path)  # was ${hydra:runtime.output_dir}
    return OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))


def stored_run_config(checkpoint: Mapping[str, Any], path: Path) -> DictConfig:
    """The configuration a checkpoint was trained with: the one stored in it, else its run
    folder's ``.hydra/config.yaml``."""
    stored = checkpoint.get(CONFIG_KEY)
    if isinstance(stored, Mapping):
        cfg = OmegaConf.create(dict(stored))
    else:
        run_dir = RunDir.of_checkpoint(path)
        beside = read_run_config(run_dir)
        if beside is None:
            raise CheckpointError(
                f"{path}: holds no training configuration ('{CONFIG_KEY}') and there is no "
                f"{run_dir.config_file} beside it; was it written by nuclei-train?"
            )
        log.warning("%s holds no stored config; using %s", path, run_dir.config_file)
        cfg = beside
    for key in REQUIRED_SECTIONS:
        if key not in cfg:
            raise CheckpointError(f"{path}: its stored configuration has no '{key}' section")
    return cfg


def load_run(checkpoint_path: str | Path, trust: bool = False) -> Run:
    """Read a checkpoint and the configuration it was trained with.

    Raises :class:`CheckpointError` naming the file when it cannot be read or holds no
    configuration (and has no ``.hydra/config.yaml`` beside it).
    """
    path = Path(checkpoint_path).expanduser()
    checkpoint = read_checkpoint(path, trust=trust)
    config = checked_run_config(stored_run_config(checkpoint, path), path, trust)
    return Run(path, checkpoint, config, RunDir.of_checkpoint(path))


#: The key by which Hydra names what to build.
TARGET_KEY = "_target_"
#: What a learning-rate scheduler class derives from (ReduceLROnPlateau did not always).
SCHEDULER_BASES = (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


def entries(node: Any, path: str = "") -> Iterator[tuple[str, Any, Any, str]]:
    """Every ``(dotted key of its container, key, value, its own dotted key)`` of a nested
    mapping/list of plain values, depth first (list items keyed by their index)."""
    if isinstance(node, Mapping):
        items = [(key, value, f"{path}.{key}" if path else str(key)) for key, value in node.items()]
    elif isinstance(node, list | tuple):
        items = [(index, value, f"{path}[{index}]") for index, value in enumerate(node)]
    else:
        return
    for key, value, where in items:
        yield path, key, value, where
        yield from entries(value, where)


def targets_in(node: Any) -> Iterator[tuple[str, Any]]:
    """Every ``(dotted key, target)`` in a nested mapping/list of plain values."""
    return ((path, value) for path, key, value, _ in entries(node) if key == TARGET_KEY)


@functools.cache
def packaged_targets() -> frozenset[str]:
    """The ``_target_`` of every packaged config (``nuclei.conf``), and the data module's."""
    found = {DATA_MODULE}
    pending = [files("nuclei.conf")]
    while pending:
        entry = pending.pop()
        if entry.is_dir():
            pending += list(entry.iterdir())
        elif entry.name.endswith(".yaml"):
            config = OmegaConf.to_container(OmegaConf.create(entry.read_text()), resolve=False)
            found |= {target for _, target in targets_in(config) if isinstance(target, str)}
    return frozenset(found)


def _is_torch_class(target: str, module: Any, *bases: type) -> bool:
    """Whether ``target`` is ``<module>.<Name>`` for a class of ``module`` derived from
    one of ``bases`` (looked up, not imported)."""
    prefix, _, name = target.rpartition(".")
    found = getattr(module, name, None) if prefix == module.__name__ else None
    return inspect.isclass(found) and issubclass(found, bases)


def is_allowed(target: Any) -> bool:
    """Whether a stored configuration may build ``target`` without being trusted."""
    if not isinstance(target, str):
        return False
    return (
        target in packaged_targets()
        or _is_torch_class(target, torch.optim, torch.optim.Optimizer)
        or _is_torch_class(target, torch.optim.lr_scheduler, *SCHEDULER_BASES)
    )


def foreign_targets(config: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The ``(dotted key, target)`` pairs of ``config`` (plain values) it may not build."""
    return [(where, target) for where, target in targets_in(config) if not is_allowed(target)]


def interpolations_in(node: Any) -> Iterator[str]:
    """The dotted key of every string in ``node`` that OmegaConf would read as an
    interpolation (``${...}``)."""
    return (
        where for _, _, value, where in entries(node) if isinstance(value, str) and "${" in value
    )


#: The ``_target_``s the package's configs named before their classes moved, and the names
#: of those classes now: a configuration stored before the move builds the same classes.
MOVED_TARGETS = {
    f"nuclei.training.callbacks.{module}.{name}": f"nuclei.training.callbacks.{name}"
    for module, name in (
        ("safety", "CheckpointOnException"),
        ("safety", "StopOnNonFiniteLoss"),
        ("prediction_grid", "PredictionGrid"),
        ("epoch_log", "EpochLog"),
    )
} | {"nuclei.runs.atomic.AtomicCheckpointIO": "nuclei.training.trainer.AtomicCheckpointIO"}


def with_moved_targets(node: Any) -> Any:
    """``node`` (plain values) with each ``_target_`` of :data:`MOVED_TARGETS` renamed."""
    if isinstance(node, Mapping):
        return {
            key: MOVED_TARGETS.get(value, value)
            if key == TARGET_KEY and isinstance(value, str)
            else with_moved_targets(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [with_moved_targets(value) for value in node]
    return node


def checked_run_config(config: DictConfig, source: Path, trust: bool = False) -> DictConfig:
    """``config`` (read from ``source``) resolved to plain values, refused when it would
    build anything the package's own configs do not name, unless ``trust``.

    See the module docstring. The result holds no interpolation, so what is
    built later is exactly what was checked here. The layout of nuclei 0.1 (a task without
    ``net``) is refused whatever ``trust`` says.
    """
    task = config.get("task")
    if task is not None and (not isinstance(task, DictConfig) or "net" not in task):
        raise CheckpointError(
            f"{source}: its stored configuration has no 'task.net' (the layout of nuclei 0.1, "
            "which is no longer read); train it again with nuclei-train"
        )
    try:
        plain = OmegaConf.to_container(config, resolve=True)
    except Exception as exc:  # any resolver error: the stored values are not plain
        raise CheckpointError(
            f"{source}: its stored configuration does not resolve ({_last_words(exc)})"
        ) from exc
    plain = with_moved_targets(plain)
    if not trust:
        foreign = foreign_targets(plain)
        if foreign:
            named = ", ".join(f"{target!r} (at {where or 'the top'})" for where, target in foreign)
            raise CheckpointError(
                f"{source}: refused: its stored configuration would run code that nuclei's "
                f"own configs do not name: {named}. If you trust this file, pass "
                "trust_checkpoint=true."
            )
        nested = list(interpolations_in(plain))
        if nested:
            raise CheckpointError(
                f"{source}: refused: its stored configuration resolves to further "
                f"interpolations (at {', '.join(nested)}). If you trust this file, pass "
                "trust_checkpoint=true."
            )
    return OmegaConf.create(plain)


def restore_task(run: Run, **overrides: Any) -> SegmentationTask:
    """Rebuild the run's task from its config and load the trained weights (eval mode).

    ``overrides`` replace constructor arguments (e.g. ``postprocess``); speed options are
    off (compiling pays only over a long training run).
    """
    try:
        task = instantiate(run.config.task, **{"speed": None, **overrides})
    except InstantiationException as exc:
        raise CheckpointError(
            f"{run.checkpoint_path}: its stored configuration does not build a model with this "
            f"version of nuclei ({exc})"
        ) from exc
    check_finite_weights(run)
    try:
        task.load_state_dict(run.checkpoint["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"{run.checkpoint_path}: its weights do not fit the model its configuration "
            f"describes ({str(exc).splitlines()[0]})"
        ) from exc
    return task.eval()


def check_finite_weights(run: Run) -> None:
    """Refuse a checkpoint whose weights hold NaN or infinite values (such a network finds
    nothing, silently)."""
    for name, value in run.checkpoint["state_dict"].items():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            bad = int((~torch.isfinite(value)).sum())
            if bad:
                raise CheckpointError(
                    f"{run.checkpoint_path}: its weights hold {bad} non-finite values (NaN or "
                    f"inf) in {name}; the training diverged or the file is damaged"
                )


def read_tuned_postprocess(path: Path) -> dict[str, Any]:
    """The ``settings`` of a tuned-postprocessing file."""
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
    the run's config (as its task used them), the run's tuned settings (when ``use_tuned``
    and the file exists), then the values ``given``."""
    base = OmegaConf.create(asdict(PostprocessConfig()))
    stored = run.config.task.get("postprocess")
    if stored is not None:
        base = OmegaConf.merge(base, stored)
    tuned = run.run_dir.tuned_postprocess_file
    if use_tuned and tuned.is_file():
        base = OmegaConf.merge(base, read_tuned_postprocess(tuned))
        log.info("Using the tuned postprocessing of %s", tuned)
    try:
        return PostprocessConfig(**OmegaConf.to_container(inherit(base, given)))  # type: ignore[arg-type]
    except TypeError as exc:
        raise ValueError(f"postprocess: {exc}") from exc
