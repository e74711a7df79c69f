"""Find (image, masks) file pairs in the published DSB2018 folder layouts.

Two layouts are understood:

* ``kaggle``: ``<root>/<id>/images/<id>.png`` with one mask per nucleus in
  ``<root>/<id>/masks/*.png`` (``root`` may also be the folder holding ``stage1_train``);
* ``flat``: ``<root>/inputs/<id>.png`` with one merged mask per image in
  ``<root>/masks/<id>.png`` (``root`` may also be the folder holding ``train/``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nuclei.data.io import IMAGE_SUFFIXES

LAYOUTS = ("auto", "kaggle", "flat")


@dataclass(frozen=True)
class SampleFiles:
    """The files of one sample: its image and either instance masks or one merged mask."""

    sample_id: str
    image: Path
    instance_masks: tuple[Path, ...] = ()
    merged_mask: Path | None = None

    @property
    def has_instances(self) -> bool:
        """True when masks come one file per nucleus (so instances are known)."""
        return self.merged_mask is None


class LayoutError(FileNotFoundError):
    """No usable data set was found at a path; the message names it and what was expected."""


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _is_kaggle_sample(folder: Path) -> bool:
    return (folder / "images").is_dir()


def _kaggle_root(root: Path) -> Path | None:
    if any(_is_kaggle_sample(d) for d in root.iterdir() if d.is_dir()):
        return root
    nested = root / "stage1_train"
    if nested.is_dir() and any(_is_kaggle_sample(d) for d in nested.iterdir() if d.is_dir()):
        return nested
    return None


def _flat_root(root: Path) -> Path | None:
    for candidate in (root, root / "train"):
        if (candidate / "inputs").is_dir() and (candidate / "masks").is_dir():
            return candidate
    return None


def find_kaggle_samples(root: Path) -> list[SampleFiles]:
    """List samples of a Kaggle-layout folder (``stage1_train`` or the folder holding it)."""
    base = _kaggle_root(root)
    if base is None:
        raise LayoutError(f"{root}: no <id>/images/<id>.png folders (Kaggle layout) found")
    samples = []
    for folder in sorted(d for d in base.iterdir() if d.is_dir() and _is_kaggle_sample(d)):
        images = _image_files(folder / "images")
        if len(images) != 1:
            raise LayoutError(
                f"{folder / 'images'}: expected exactly one image, found {len(images)}"
            )
        masks_dir = folder / "masks"
        masks = tuple(_image_files(masks_dir)) if masks_dir.is_dir() else ()
        samples.append(SampleFiles(folder.name, images[0], instance_masks=masks))
    return samples


def find_flat_samples(root: Path) -> list[SampleFiles]:
    """List samples of a flat ``inputs/`` + ``masks/`` folder, pairing files by id."""
    base = _flat_root(root)
    if base is None:
        raise LayoutError(f"{root}: no inputs/ and masks/ folders (flat layout) found")
    masks = {p.stem: p for p in _image_files(base / "masks")}
    samples = []
    missing = []
    for image in _image_files(base / "inputs"):
        mask = masks.get(image.stem)
        if mask is None:
            missing.append(image.name)
            continue
        samples.append(SampleFiles(image.stem, image, merged_mask=mask))
    if missing:
        raise LayoutError(
            f"{base / 'masks'}: no mask for {len(missing)} image(s) of {base / 'inputs'}: "
            + ", ".join(missing[:10])
            + (" ..." if len(missing) > 10 else "")
        )
    return samples


def find_samples(root: str | Path, layout: str = "auto") -> list[SampleFiles]:
    """Find all samples under ``root`` in the named layout, or detect it with ``auto``."""
    root = Path(root).expanduser()
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if not root.is_dir():
        raise LayoutError(f"{root}: data root does not exist or is not a folder")
    if layout == "kaggle" or (layout == "auto" and _kaggle_root(root) is not None):
        samples = find_kaggle_samples(root)
    elif layout == "flat" or (layout == "auto" and _flat_root(root) is not None):
        samples = find_flat_samples(root)
    else:
        raise LayoutError(
            f"{root}: no known layout found; looked for Kaggle (<id>/images/<id>.png, "
            "optionally under stage1_train/) and flat (inputs/ + masks/, optionally under train/)"
        )
    if not samples:
        raise LayoutError(f"{root}: the {layout} layout was found but holds no images")
    return samples
