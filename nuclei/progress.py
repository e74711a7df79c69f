"""The one progress bar of every long job (decoding, generating, tuning, segmenting)."""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_bar(
    enabled: bool = True, transient: bool = False, show_current: bool = False
) -> Progress:
    """A rich bar: the task's description, a bar, ``done/total``, elapsed and remaining time.

    ``show_current`` adds the task's ``current`` field (what is being worked on, set with
    ``bar.update(task, current=...)``); ``transient`` clears the bar once it is done.
    """
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
    ]
    if show_current:
        columns.append(TextColumn("{task.fields[current]}"))
    columns += [TimeElapsedColumn(), TimeRemainingColumn()]
    return Progress(*columns, disable=not enabled, transient=transient)
