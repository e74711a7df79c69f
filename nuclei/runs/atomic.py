"""Nothing half-written: files and checkpoints replace their target by an atomic rename.

:func:`atomic_write_text` and :class:`AtomicCheckpointIO` write to a temporary file in the
target's own folder and rename it over the target (``os.replace``, atomic on POSIX), so a run
killed mid-write leaves the previous file or the new one, never half of one. (Lightning's own
writer stages checkpoints in the system temp folder and moves them, which is a copy, not a
rename, when that folder is on another file system.)
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from nuclei.files import naming_full_disk


def _current_umask() -> int:
    """The process's file-creation mask (reading it means setting it, so set it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _replace_atomically(path: Path, write: Any) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``."""
    with naming_full_disk(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            os.chmod(temporary, 0o666 & ~_current_umask())  # mkstemp makes it private (0600)
            with os.fdopen(descriptor, "wb") as file:
                write(file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename."""
    return _replace_atomically(Path(path), lambda file: file.write(text.encode("utf-8")))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint writer that renames a complete temporary file over the target."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        """Save ``checkpoint`` to the local ``path`` atomically (``storage_options`` unused)."""
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        _replace_atomically(Path(path), lambda file: torch.save(checkpoint, file))


def atomic_write_json(path: str | Path, record: Mapping[str, Any]) -> Path:
    """Write ``record`` as indented, key-sorted JSON through :func:`atomic_write_text`."""
    return atomic_write_text(path, json.dumps(dict(record), indent=2, sort_keys=True) + "\n")
