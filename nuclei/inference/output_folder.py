"""Where a prediction may write: never into its input, nor the input inside it.

An output equal to the input folder, inside it, or holding the input would mix the images
with the files made of them: an image named like another's mask (``a_mask.png``) would be
overwritten, and a rerun would read the outputs as new images. :func:`refuse_overlap` refuses
those (symbolic links followed) before anything is read or written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class OutputFolderError(ValueError):
    """An output folder a prediction may not write into: the input's, or one in use."""


def _canonical(path: str | Path) -> Path:
    """``path`` absolute, with symbolic links and ``..`` resolved (it need not exist)."""
    return Path(path).expanduser().resolve()


def overlap(source: str | Path, output: str | Path) -> str | None:
    """Why ``output`` may not hold the prediction of ``source`` (a file or folder), or None."""
    image_side, output_side = _canonical(source), _canonical(output)
    if output_side == image_side:
        return f"output={output} is the input {source} itself"
    if image_side in output_side.parents:
        return f"output={output} is inside the input folder {source}"
    if output_side in image_side.parents:
        return f"the input {source} is inside output={output}"
    return None


def refuse_overlap(source: str | Path, output: str | Path) -> None:
    """Raise :class:`OutputFolderError` (one line) when ``output`` overlaps ``source``."""
    problem = overlap(source, output)
    if problem is not None:
        raise OutputFolderError(
            f"{problem}: the files made of the images would mix with them (a mask can replace "
            "an image named like it, a rerun would segment the outputs); choose an output "
            "folder outside the input"
        )


def can_be_made(folder: str | Path) -> bool:
    """Whether ``folder`` is, or can be created as, a folder this process may write into."""
    path = Path(folder).expanduser().absolute()
    while not path.exists():
        if path.parent == path:
            return False
        path = path.parent
    if not path.is_dir():
        return False
    try:  # a real try: permissions say little for root, or on read-only and virtual mounts
        os.rmdir(tempfile.mkdtemp(prefix=".nuclei-probe-", dir=path))
    except OSError:
        return False
    return True
