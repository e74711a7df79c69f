"""The images a prediction reads: found in a folder, decoded for the network and measuring.

:func:`find_images` lists the files to segment; :func:`read_for_segmenting` decodes one into
a :class:`LoadedImage`. A file that cannot be read (damaged, oversized, an unsupported
layout) becomes a :class:`LoadedImage` carrying the error, so one bad file is reported and
skipped without stopping the others. No torch here: the postprocessing processes import this
module (and start faster without it); the dataset over these files is in
:mod:`nuclei.inference.predict_data`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nuclei.data.sources.io import IMAGE_SUFFIXES, ImageReadError, read_raw_image
from nuclei.inference.image_guard import pillow_pixel_limit, refuse_oversized
from nuclei.inference.images import as_network_image


@dataclass
class LoadedImage:
    """One input file, decoded: its raw pixels (measured) and the network's uint8 RGB copy.

    ``error`` names the file and what was wrong when it could not be read; the arrays are
    then None.
    """

    image_id: str
    path: Path
    raw: np.ndarray | None = None
    image: np.ndarray | None = None
    error: str | None = None


def _images_in(folder: Path) -> list[Path]:
    """The visible files of ``folder`` with an image suffix, and the symbolic links so named
    that lead to no file (a loop, a missing target): those are reported when read, not
    passed over in silence."""
    return [
        p
        for p in folder.iterdir()
        if (p.is_file() or (p.is_symlink() and not p.is_dir()))
        and not p.name.startswith(".")
        and p.suffix.lower() in IMAGE_SUFFIXES
    ]


def find_images(path: str | Path) -> list[Path]:
    """The images to segment: a file, or a folder's image files (Kaggle ``<id>/images/`` too).

    Hidden files and folders and files without an image suffix are ignored (a prediction's
    records, ``.nuclei-predict/``, are never read as images); two images with the same
    id (file stem) are refused, since their outputs would collide.
    """
    path = Path(path).expanduser()
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: input file or folder not found")
    found = _images_in(path)
    kaggle = (d for d in path.iterdir() if not d.name.startswith(".") and d.is_dir())
    for sub in sorted(d for d in kaggle if (d / "images").is_dir()):
        found += _images_in(sub / "images")
    if not found:
        raise FileNotFoundError(
            f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in it or in <id>/images/ below it"
        )
    by_id: dict[str, list[Path]] = {}
    for image in found:
        by_id.setdefault(image.stem, []).append(image)
    clashes = {k: v for k, v in by_id.items() if len(v) > 1}
    if clashes:
        listed = "; ".join(", ".join(str(p) for p in v) for v in list(clashes.values())[:5])
        raise ValueError(f"{len(clashes)} image id(s) occur twice (same file stem): {listed}")
    return sorted(found, key=lambda p: p.stem)


def read_for_segmenting(path: Path, max_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """A file's raw pixels (for measuring) and the uint8 RGB copy the network sees.

    The copy is made from the raw pixels by the API's own :func:`as_network_image`, which
    is what :func:`~nuclei.data.sources.io.read_image` makes of the file; raises
    ImageReadError, ImageTooLargeError or another ValueError naming the file.
    """
    refuse_oversized(path, max_pixels)
    with pillow_pixel_limit(max_pixels):
        raw = read_raw_image(path)
    try:
        return raw, as_network_image(raw)
    except ValueError as exc:
        raise ImageReadError(f"{path}: {exc}") from exc
