"""The runs of a sweep folder: each run's overrides, final metrics and objective curve."""

from __future__ import annotations

import json
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

    def value(self, key: str) -> Any:
        """A metric or fact of the run (None when the run did not record it)."""
        return self.metrics.get(key)


def find_runs(sweep_dir: str | Path) -> list[RunDir]:
    """Run folders under ``sweep_dir`` (those with saved overrides), in natural order."""
    runs = RunDir.find_in(sweep_dir)
    return sorted(runs, key=lambda r: [int(s) if s.isdigit() else s for s in r.path.parts])


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


def read_run(run_dir: RunDir, sweep_dir: Path) -> RunSummary:
    """Overrides, final metrics, objective and objective curve of one run folder."""
    overrides = OmegaConf.to_container(OmegaConf.load(run_dir.overrides_file))
    metrics_path = run_dir.metrics_file
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    path = run_dir.path
    name = str(path.relative_to(sweep_dir)) if path != sweep_dir else path.name
    objective = read_objective(run_dir)
    curve = read_curve(run_dir, objective.metric)
    return RunSummary(name, [str(o) for o in overrides or []], metrics, objective, curve)


def summarize(sweep_dir: str | Path) -> list[RunSummary]:
    """Every run of a sweep, best first by the objective (runs without metrics last)."""
    root = Path(sweep_dir)
    runs = [read_run(run_dir, root) for run_dir in find_runs(root)]
    return sorted(runs, key=lambda r: r.objective.sort_key(r.value(r.objective.metric)))
