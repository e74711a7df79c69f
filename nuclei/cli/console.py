"""The one way the command lines print a table: whole, in a terminal, a file or a log.

Rich lays a table out for the console's width, and outside a terminal it assumes 80
columns: a wide table redirected to a file (``nuclei-summarize ... > summary.txt``) would
have every column cut to a few characters and '…'. :func:`print_table` prints a table at
the width it needs when the output is not a terminal (a file has no width), and in a
terminal too narrow for it folds long values onto the next line of their cell instead of
cutting them, so every header and value stays whole and it still reads as a table.
"""

from __future__ import annotations

import copy
from dataclasses import replace

from rich.console import Console
from rich.table import Table

# Wide enough for any table a command prints; only the table's own need is used.
_UNBOUNDED = 100_000


def natural_width(table: Table, console: Console) -> int:
    """The width ``table`` takes with no cell wrapped or cut."""
    options = console.options.update_width(_UNBOUNDED)
    return console.measure(table, options=options).maximum


def folding(table: Table) -> Table:
    """A copy of ``table`` whose columns wrap long values inside their cell, never cut them."""
    whole = copy.copy(table)
    whole.columns = [replace(column, overflow="fold") for column in table.columns]
    return whole


def print_table(table: Table, console: Console | None = None) -> None:
    """Print ``table`` with every header and value whole (see the module docstring)."""
    console = console or Console()
    table = folding(table)
    if console.is_terminal:
        console.print(table)
        return
    width = console.width
    console.width = max(width, natural_width(table, console))
    try:
        console.print(table)
    finally:
        console.width = width
