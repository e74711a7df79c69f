"""The runs of a sweep folder: each run's overrides, final metrics, evaluations and
objective curve.

Besides ``metrics.json`` a run's summary holds the ``nuclei-eval`` results of its best
checkpoint, ``checkpoints/<stem>.<tag>.eval.json`` with ``tag`` = ``<split>`` or
``<split>.<digest>``: their metrics appear as ``<tag>/<name>`` (``test.7f86fd5d/map``, or
``test/map`` for the tag ``test``), and :attr:`RunSummary.tags` says what each tag means.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from nuclei.runs.run_dir import RunDir
from nuclei.training.objective import Objective


@dataclass
class RunSummary:
    """One run of a sweep: where it is, what it overrode, what it reached."""

    name: str
    overrides: list[str]
    metrics: dict[str, Any]
    objective: Objective
    curve: list[tuple[int, float]] = field(default_factory=list)
    #: Evaluation tag (``test.7f86fd5d``) -> what was evaluated (split, data, tta, ...).
    tags: dict[str, str] = field(default_factory=dict)

    def value(self, key: str) -> Any:
        """A metric or fact of the run (None when the run did not record it)."""
        return self.metrics.get(key)


def find_runs(sweep_dir: str | Path) -> list[RunDir]:
    """Run folders under ``sweep_dir`` (those with saved overrides), in natural order."""
    return sorted(RunDir.find_in(sweep_dir), key=lambda r: natural_order(r.path))


def natural_order(path: Path) -> list[tuple[int, int | str]]:
    """A sort key of a path: numbered parts by number (2 before 10), before named ones."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in path.parts]


def read_curve(run_dir: RunDir, tag: str) -> list[tuple[int, float]]:
    """(step, value) of a TensorBoard scalar in the run's event files; [] if it is absent."""
    events = EventAccumulator(str(run_dir.path), size_guidance={"scalars": 0})
    events.Reload()
    if tag not in events.Tags().get("scalars", []):
        return []
    return [(event.step, event.value) for event in events.Scalars(tag)]


def read_objective(run_dir: RunDir) -> Objective:
    """The run's objective, from its saved config (the default one for older runs)."""
    if not run_dir.config_file.is_file():
        return Objective()
    section = OmegaConf.load(run_dir.config_file).get("objective")
    return Objective(**OmegaConf.to_container(section)) if section else Objective()


_EVAL_SUFFIX = ".eval.json"
#: ``<split>``, ``<split>.<digest>`` (eight hex digits) or ``<split>.<label>`` (nuclei-eval's
#: ``label=``: letters, digits, ``_`` and ``-``).
_TAG = re.compile(r"[A-Za-z_]+(\.[A-Za-z0-9_-]+)?")


def best_checkpoint_stem(metrics: dict[str, Any]) -> str:
    """File stem of the run's best checkpoint (``metrics.json``), else ``last``."""
    best = metrics.get("best_checkpoint")
    return Path(str(best)).stem if best else RunDir.last_checkpoint_stem


def evaluation_files(run_dir: RunDir, stem: str) -> dict[str, Path]:
    """Tag -> ``<stem>.<tag>.eval.json`` of one checkpoint of the run, sorted by tag."""
    found: dict[str, Path] = {}
    folder = run_dir.checkpoint_dir
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        name = path.name
        if name.startswith(f"{stem}.") and name.endswith(_EVAL_SUFFIX):
            tag = name[len(stem) + 1 : -len(_EVAL_SUFFIX)]
            if _TAG.fullmatch(tag):
                found[tag] = path
    return found


def describe_evaluation(record: dict[str, Any]) -> str:
    """A short description of an evaluation record: split, test folder, TTA, postprocessing."""
    parts = [f"split={record.get('split', '?')}"]
    if record.get("test_root"):
        parts.append(f"test_root={Path(str(record['test_root'])).name}")
    parts.append(f"tta={record.get('tta') or 'none'}")
    postprocess = record.get("postprocess")
    if isinstance(postprocess, dict):
        text = json.dumps(postprocess, sort_keys=True, default=str)
        parts.append(f"postprocess={hashlib.sha256(text.encode()).hexdigest()[:8]}")
    if record.get("postprocess_source"):
        parts.append(str(record["postprocess_source"]))
    if record.get("n_images") is not None:
        parts.append(f"{record['n_images']} images")
    return ", ".join(parts)


def evaluation_metrics(tag: str, record: dict[str, Any]) -> dict[str, float]:
    """The numeric ``<prefix>/<name>`` entries of a record as ``<tag>/<name>``."""
    return {
        f"{tag}/{key.split('/', 1)[1]}": float(value)
        for key, value in record.items()
        if "/" in key and isinstance(value, int | float) and not isinstance(value, bool)
    }


def read_evaluations(
    run_dir: RunDir, metrics: dict[str, Any]
) -> tuple[dict[str, float], dict[str, str]]:
    """Metrics (``<tag>/<name>``) and tag descriptions of the best checkpoint's evaluations."""
    values: dict[str, float] = {}
    tags: dict[str, str] = {}
    for tag, path in evaluation_files(run_dir, best_checkpoint_stem(metrics)).items():
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # half-written or unreadable: the run's table goes on without it
        if isinstance(record, dict):
            values.update(evaluation_metrics(tag, record))
            tags[tag] = describe_evaluation(record)
    return values, tags


def read_run(run_dir: RunDir, sweep_dir: Path) -> RunSummary:
    """Overrides, final metrics, evaluations, objective and objective curve of one run."""
    saved = OmegaConf.to_container(OmegaConf.load(run_dir.overrides_file))
    metrics_path = run_dir.metrics_file
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    evaluated, tags = read_evaluations(run_dir, metrics)
    path = run_dir.path
    name = str(path.relative_to(sweep_dir)) if path != sweep_dir else path.name
    objective = read_objective(run_dir)
    curve = read_curve(run_dir, objective.metric)
    overrides = [str(o) for o in saved or []]
    return RunSummary(name, overrides, {**evaluated, **metrics}, objective, curve, tags)


def summarize(sweep_dir: str | Path) -> list[RunSummary]:
    """Every run of a sweep, best first by the objective (runs without metrics last)."""
    root = Path(sweep_dir)
    runs = [read_run(run_dir, root) for run_dir in find_runs(root)]
    return sorted(runs, key=lambda r: r.objective.sort_key(r.value(r.objective.metric)))
