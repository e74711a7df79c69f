"""What the commands print and what they keep quiet: whole tables, and no known library noise.

Tables. Rich lays a table out for the console's width, and outside a terminal it assumes 80
columns: a wide table redirected to a file (``nuclei-summarize ... > summary.txt``) would
have every column cut to a few characters and '…'. :func:`print_table` prints a table at
the width it needs when the output is not a terminal (a file has no width), and in a
terminal too narrow for it folds long values onto the next line of their cell instead of
cutting them, so every header and value stays whole and it still reads as a table.

Noise. Lightning advertises its cloud services on every run ("💡 Tip: For seamless cloud
logging and experiment tracking, try installing [litlogger]...", "... uploads and
versioning, try installing [litmodels]..."), and its own code trips a deprecation of
torch's (``isinstance(treespec, LeafSpec)`` in ``lightning/pytorch/utilities/_pytree.py``)
that a user of nuclei can do nothing about. :func:`quiet_known_noise` drops exactly these: a
filter on the one Lightning logger that prints the advertisements, and warning filters
matching both the message and the module that raises it. Every other message and warning
is shown as before. The commands call it (:func:`nuclei.cli.app.run_app`); the Python API
does not.
"""

from __future__ import annotations

import copy
import logging
import warnings
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


#: Lightning's logger of ``rank_zero_info``, which prints the advertisements.
LIGHTNING_INFO_LOGGER = "lightning.pytorch.utilities.rank_zero"
#: How each advertisement starts.
ADVERTISEMENT_PREFIX = "💡 Tip:"
#: (category, message regex, module regex) of each warning silenced.
KNOWN_WARNINGS: tuple[tuple[type[Warning], str, str], ...] = (
    (
        FutureWarning,
        r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        r"lightning\.pytorch\.utilities\._pytree",
    ),
)


class _DropAdvertisements(logging.Filter):
    """Rejects the records that advertise a service (:data:`ADVERTISEMENT_PREFIX`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(ADVERTISEMENT_PREFIX)


def quiet_known_noise() -> None:
    """Silence Lightning's advertisements and :data:`KNOWN_WARNINGS` in this process."""
    for category, message, module in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    logger = logging.getLogger(LIGHTNING_INFO_LOGGER)
    if not any(isinstance(f, _DropAdvertisements) for f in logger.filters):
        logger.addFilter(_DropAdvertisements())
