"""Known noise of the libraries a command runs, kept off its console and log.

Lightning advertises its cloud services on every run ("💡 Tip: For seamless cloud logging
and experiment tracking, try installing [litlogger]...", "... uploads and versioning, try
installing [litmodels]..."), and its own code trips a deprecation of torch's
(``isinstance(treespec, LeafSpec)`` in ``lightning/pytorch/utilities/_pytree.py``) that a
user of nuclei can do nothing about. :func:`quiet_known_noise` drops exactly these: a filter
on the one Lightning logger that prints the advertisements, and warning filters matching
both the message and the module that raises it. Every other message and warning is shown
as before. The commands call it (:func:`nuclei.cli.app.run_app`); the Python API does not.
"""

from __future__ import annotations

import logging
import warnings

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
