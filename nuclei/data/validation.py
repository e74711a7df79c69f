"""Gather data problems found at setup and report them together, never one at a time.

A problem confined to one sample (an unreadable file, a mask of the wrong size, a malformed
RLE row) stops the run unless ``on_bad_file="skip"``, which drops the sample and records it.
Problems with a whole folder or file (no layout, ids missing on one side) always stop it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

ON_BAD_FILE = ("error", "skip")
MAX_LISTED = 50

log = logging.getLogger(__name__)


class DataValidationError(ValueError):
    """Problems found in a data set at setup; ``problems`` holds one message per problem."""

    def __init__(self, where: str, problems: list[str], hint: str = "") -> None:
        self.problems = list(problems)
        self.hint = hint
        shown = self.problems[:MAX_LISTED]
        lines = [f"{len(self.problems)} problem(s) in {where}:", *(f"  - {p}" for p in shown)]
        if len(self.problems) > MAX_LISTED:
            lines.append(f"  ... and {len(self.problems) - MAX_LISTED} more")
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))


def some(names: Iterable[str], limit: int = 5) -> str:
    """``a, b, c`` or ``a, b, c, d, e ... (+N more)`` for messages."""
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f" ... (+{len(names) - limit} more)" if len(names) > limit else "")


@dataclass
class SplitReport:
    """What setup did with one data folder: counts, dropped samples and warnings."""

    split: str
    root: str
    layout: str
    labels: str | None = None
    found: int = 0
    used: int = 0
    dropped: list[dict[str, str]] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ignored_files: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, for ``data_report.json``."""
        return asdict(self)


def check_bad_samples(
    bad: Mapping[str, str], on_bad_file: str, report: SplitReport, where: str
) -> set[str]:
    """Raise on per-sample problems, or (``skip``) record and return the ids to drop."""
    if on_bad_file not in ON_BAD_FILE:
        raise ValueError(f"on_bad_file must be one of {ON_BAD_FILE}, got {on_bad_file!r}")
    if not bad:
        return set()
    if on_bad_file == "error":
        raise DataValidationError(
            where,
            [bad[sample_id] for sample_id in sorted(bad)],
            hint="Fix or remove these files, or set data.source.on_bad_file=skip to drop the "
            "affected samples (they are then listed in the run log and data_report.json).",
        )
    for sample_id in sorted(bad):
        report.dropped.append({"id": sample_id, "reason": bad[sample_id]})
        log.warning("Dropped sample %s: %s", sample_id, bad[sample_id])
    log.warning(
        "%s: dropped %d sample(s) with bad files (data.source.on_bad_file=skip)", where, len(bad)
    )
    return set(bad)


def warn(report: SplitReport, message: str) -> None:
    """Log a warning and keep it in the report."""
    report.warnings.append(message)
    log.warning(message)
