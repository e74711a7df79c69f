"""Groups of a sweep's runs that repeat one configuration, and paired comparisons of groups.

Runs whose overrides differ only in ``seed`` or ``data.split.fold`` (:data:`REPLICATE_KEYS`)
repeat one configuration: they form a :class:`Group`, labelled by its other overrides that
differ between groups (``"all"`` when there is one group). A group's metric is a mean with
Student's t interval over its runs; :func:`compare` pairs the runs of two groups by their
seed and fold and gives the interval of the mean difference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nuclei.metrics.intervals import Interval, mean_interval, paired_difference
from nuclei.runs.sweep import RunSummary

#: Overrides that repeat a configuration rather than change it.
REPLICATE_KEYS = ("seed", "data.split.fold")
#: The label of a group whose overrides are all shared by the other groups.
DEFAULTS_LABEL = "defaults"

Replicate = tuple[str | None, ...]


class GroupError(ValueError):
    """Groups cannot be picked or compared as asked; says why."""


def override_key(override: str) -> str:
    """The key of a Hydra override (``+seed=1`` -> ``seed``)."""
    return override.partition("=")[0].lstrip("+~")


def replicate_of(run: RunSummary) -> Replicate:
    """The run's value of each of :data:`REPLICATE_KEYS` (None when not overridden)."""
    values = {override_key(o): o.partition("=")[2] for o in run.overrides}
    return tuple(values.get(key) for key in REPLICATE_KEYS)


def describe_replicate(replicate: Replicate) -> str:
    """``seed=1 data.split.fold=0``; the words for a run that overrides neither."""
    parts = [f"{k}={v}" for k, v in zip(REPLICATE_KEYS, replicate, strict=True) if v is not None]
    return " ".join(parts) or "(no seed or fold override)"


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
class Group:
    """Runs of one configuration, repeated over seeds or folds."""

    label: str
    runs: list[RunSummary] = field(default_factory=list)

    def values(self, metric: str) -> list[float]:
        """The metric of every run that recorded it."""
        return [float(v) for run in self.runs if _numeric(v := run.value(metric))]

    def interval(self, metric: str, confidence: float = 0.95) -> Interval | None:
        """Mean, std and interval of the metric over the runs; None when none recorded it."""
        values = self.values(metric)
        return mean_interval(values, confidence) if values else None

    def by_replicate(self, metric: str) -> dict[Replicate, float]:
        """The metric of each run, by the run's seed and fold."""
        found: dict[Replicate, float] = {}
        for run in self.runs:
            value = run.value(metric)
            if not _numeric(value):
                continue
            replicate = replicate_of(run)
            if replicate in found:
                raise GroupError(
                    f"group {self.label!r} has several runs with "
                    f"{describe_replicate(replicate)}: they cannot be paired"
                )
            found[replicate] = float(value)
        return found


def _settings(run: RunSummary) -> list[str]:
    """The run's overrides other than its seed and fold."""
    return [o for o in run.overrides if override_key(o) not in REPLICATE_KEYS]


def _mean_key(group: Group, metric: str | None) -> float:
    """Sort key: the group's mean objective, best first (as the runs' own sort)."""
    if not metric or not group.runs:
        return math.inf
    values = group.values(metric)
    mean = sum(values) / len(values) if values else None
    return group.runs[0].objective.sort_key(mean)


def group_runs(runs: Sequence[RunSummary]) -> list[Group]:
    """The groups of ``runs``, best mean objective first, each labelled by its overrides
    that the other groups do not share."""
    by_settings: dict[frozenset[str], list[RunSummary]] = {}
    for run in runs:
        by_settings.setdefault(frozenset(_settings(run)), []).append(run)
    if len(by_settings) == 1:
        groups = [Group("all", list(runs))]
    else:
        shared = frozenset.intersection(*by_settings)
        groups = [
            Group(" ".join(o for o in _settings(members[0]) if o not in shared), members)
            for members in by_settings.values()
        ]
        for group in groups:
            group.label = group.label or DEFAULTS_LABEL
    metric = runs[0].objective.metric if runs else None
    return sorted(groups, key=lambda group: _mean_key(group, metric))


def find_group(groups: Sequence[Group], name: str) -> Group:
    """The group labelled ``name``, else the one group whose label contains it."""
    exact = [group for group in groups if group.label == name]
    found = exact or [group for group in groups if name in group.label]
    labels = ", ".join(repr(group.label) for group in groups)
    if not found:
        raise GroupError(f"no group matches {name!r}; the groups are {labels}")
    if len(found) > 1:
        matching = ", ".join(repr(group.label) for group in found)
        raise GroupError(f"{name!r} matches several groups ({matching}): give more of one label")
    return found[0]


def _replicate_order(replicate: Replicate) -> tuple[tuple[int, str], ...]:
    """Natural order of seeds and folds (2 before 10)."""
    return tuple((len(v), v) if v is not None else (0, "") for v in replicate)


@dataclass(frozen=True)
class Comparison:
    """The paired difference ``b - a`` of a metric between two groups.

    Attributes:
        a, b: the groups' labels.
        metric: the metric compared.
        difference: mean, std and interval of ``b - a`` over the pairs (``n`` pairs).
        pairs: the seed and fold of each pair.
        unmatched: runs left out, having no run of the same seed and fold in the other group.
    """

    a: str
    b: str
    metric: str
    difference: Interval
    pairs: list[str]
    unmatched: list[str]

    def as_dict(self) -> dict[str, Any]:
        """The comparison as a JSON-ready record (NaN as None)."""
        d = self.difference
        numbers = {"mean": d.mean, "std": d.std, "low": d.low, "high": d.high}
        return {
            "n_pairs": d.n,
            **{k: None if math.isnan(v) else v for k, v in numbers.items()},
            "confidence": d.confidence,
            "pairs": self.pairs,
            "unmatched": self.unmatched,
        }


def compare(
    groups: Sequence[Group], a: str, b: str, metric: str, confidence: float = 0.95
) -> Comparison:
    """The difference ``b - a`` of ``metric`` over the runs of groups ``a`` and ``b`` (labels
    or parts of one) that share a seed and fold; runs without a match are left out."""
    first, second = find_group(groups, a), find_group(groups, b)
    if first is second:
        raise GroupError(f"{a!r} and {b!r} pick the same group, {first.label!r}")
    left, right = first.by_replicate(metric), second.by_replicate(metric)
    for group, values in ((first, left), (second, right)):
        if not values:
            raise GroupError(f"no run of group {group.label!r} recorded {metric}")
    matched = sorted((k for k in left if k in right), key=_replicate_order)
    unmatched = [
        f"{group.label}: {describe_replicate(k)}"
        for group, own, other in ((first, left, right), (second, right, left))
        for k in sorted(own, key=_replicate_order)
        if k not in other
    ]
    if not matched:
        raise GroupError(
            f"no run of {first.label!r} has the seed and fold of a run of {second.label!r}: "
            + "; ".join(unmatched)
        )
    difference = paired_difference(
        [left[k] for k in matched], [right[k] for k in matched], confidence
    )
    pairs = [describe_replicate(k) for k in matched]
    return Comparison(first.label, second.label, metric, difference, pairs, unmatched)
