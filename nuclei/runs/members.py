"""Several runs as one model: which checkpoints a list or a sweep folder names, and whether
they can be averaged (an ensemble) or stand for the folds of a cross-validation.

``nuclei-eval``, ``nuclei-predict``, ``nuclei-tune`` and :class:`nuclei.Segmenter` accept a
checkpoint, a run folder, a sweep folder or a list of these; :func:`checkpoints_of` turns
any of them into checkpoint files (each run's best one).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nuclei.inference.averaging import EnsembleNet
from nuclei.runs.checkpoint import CheckpointError, Run, load_run, restore_task
from nuclei.runs.run_dir import RunDir
from nuclei.training.task import SegmentationTask

#: Settings every member of an ensemble must share: they decide how images meet the
#: network and what its channels mean.
SHARED_SETTINGS: tuple[tuple[str, ...], ...] = (
    ("data", "size", "mode"),
    ("data", "size", "image_size"),
    ("data", "intensity"),
    ("task", "target"),
)


def best_checkpoint(run_dir: RunDir) -> Path:
    """The run's best checkpoint (named in its metrics.json), else its last one."""
    if run_dir.metrics_file.is_file():
        try:
            named = json.loads(run_dir.metrics_file.read_text()).get("best_checkpoint")
        except ValueError as exc:
            raise CheckpointError(f"{run_dir.metrics_file}: not a JSON file ({exc})") from exc
        if named:  # the path as written on the machine that trained; the file is in this run
            local = run_dir.checkpoint_dir / Path(named).name
            if local.is_file():
                return local
    if run_dir.last_checkpoint.is_file():
        return run_dir.last_checkpoint
    found = sorted(run_dir.checkpoint_dir.glob("*.ckpt"))
    if len(found) == 1:
        return found[0]
    raise CheckpointError(
        f"{run_dir.path}: no best or last checkpoint in {run_dir.checkpoint_dir} "
        "(expected a run folder written by nuclei-train)"
    )


def checkpoints_of(spec: str | Path | Sequence[str | Path]) -> list[Path]:
    """The checkpoint files named by ``spec``: a ``.ckpt`` file, a run folder (its best
    checkpoint), a sweep folder (the best checkpoint of each run, in run order), or a list
    of these."""
    entries = [spec] if isinstance(spec, str | Path) else list(spec)
    if not entries:
        raise CheckpointError("no checkpoint given")
    found: list[Path] = []
    for entry in entries:
        path = Path(entry).expanduser()
        if path.is_file():
            found.append(path)
        elif not path.is_dir():
            raise CheckpointError(f"{path}: checkpoint file not found (nor a run or sweep folder)")
        elif RunDir(path).checkpoint_dir.is_dir():
            found.append(best_checkpoint(RunDir(path)))
        else:
            runs = sweep_runs(path)
            if not runs:
                raise CheckpointError(
                    f"{path}: neither a checkpoint, a run folder (with checkpoints/) nor a "
                    "sweep folder of runs"
                )
            found += [best_checkpoint(run) for run in runs]
    return found


def sweep_runs(folder: Path) -> list[RunDir]:
    """The run folders (those with a ``checkpoints/`` folder) right below ``folder``, in
    natural order (0, 1, ..., 10)."""
    runs = [RunDir(p) for p in folder.iterdir() if RunDir(p).checkpoint_dir.is_dir()]
    return sorted(runs, key=lambda r: (not r.path.name.isdigit(), _natural(r.path.name)))


def _natural(name: str) -> Any:
    return int(name) if name.isdigit() else name


def _setting(run: Run, keys: tuple[str, ...]) -> Any:
    node: Any = run.config
    for key in keys:
        node = node.get(key) if node is not None else None
    return node


def check_same_recipe(runs: Sequence[Run]) -> None:
    """Raise a ValueError naming the first checkpoint whose size mode, image size,
    normalisation or target differs from the first run's: such networks cannot be averaged."""
    first = runs[0]
    for run in runs[1:]:
        for keys in SHARED_SETTINGS:
            mine, theirs = _setting(first, keys), _setting(run, keys)
            if mine != theirs:
                raise ValueError(
                    f"{run.checkpoint_path}: {'.'.join(keys)} is {theirs}, but "
                    f"{first.checkpoint_path} has {mine}; an ensemble needs the same setting"
                )


def load_members(spec: str | Path | Sequence[str | Path], trust: bool = False) -> list[Run]:
    """The runs of every checkpoint ``spec`` names (:func:`checkpoints_of`), checked to be
    averageable (:func:`check_same_recipe`)."""
    runs = [load_run(path, trust=trust) for path in checkpoints_of(spec)]
    check_same_recipe(runs)
    return runs


def ensemble_task(runs: Sequence[Run], **overrides: Any) -> SegmentationTask:
    """The first run's task (``overrides`` as :func:`restore_task`), its network replaced by
    the average of every run's network when there are several (:class:`EnsembleNet`)."""
    task = restore_task(runs[0], **overrides)
    if len(runs) > 1:
        task.net = EnsembleNet([task.net, *(restore_task(run).net for run in runs[1:])])
    return task
