"""The commands keep the known library noise off the console, and only that noise."""

from __future__ import annotations

import logging
import warnings

import pytest

from nuclei.cli.console import quiet_known_noise

LIGHTNING_INFO = "lightning.pytorch.utilities.rank_zero"


@pytest.fixture
def quieted(monkeypatch: pytest.MonkeyPatch) -> logging.Logger:
    """:func:`quiet_known_noise` applied, the warning filters and logger put back afterwards."""
    monkeypatch.setattr(warnings, "filters", list(warnings.filters))
    logger = logging.getLogger(LIGHTNING_INFO)
    monkeypatch.setattr(logger, "filters", list(logger.filters))
    quiet_known_noise()
    return logger


def test_lightning_s_advertisements_are_dropped_its_other_messages_kept(
    quieted: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=LIGHTNING_INFO):
        quieted.info("💡 Tip: For seamless cloud uploads and versioning, try installing [x]")
        quieted.info("💡 Tip: For seamless cloud logging and experiment tracking, try [y]")
        quieted.info("GPU available: False, used: False")
    assert [record.getMessage() for record in caplog.records] == [
        "GPU available: False, used: False"
    ]


def test_the_known_deprecation_is_ignored_and_others_still_shown(quieted: logging.Logger) -> None:
    with warnings.catch_warnings(record=True) as shown:
        warnings.filterwarnings("default")  # what a command shows, pytest's filters aside
        quiet_known_noise()
        message = (
            "`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, "
            "TreeSpec) and treespec.is_leaf()` instead."
        )
        warnings.warn_explicit(
            message, FutureWarning, "_pytree.py", 21, module="lightning.pytorch.utilities._pytree"
        )
        warnings.warn_explicit(
            "another deprecation",
            FutureWarning,
            "_pytree.py",
            22,
            module="lightning.pytorch.utilities._pytree",
        )
        warnings.warn_explicit(message, FutureWarning, "ours.py", 1, module="nuclei.ours")
    assert [(str(w.message), w.filename) for w in shown] == [
        ("another deprecation", "_pytree.py"),
        (message, "ours.py"),
    ]
