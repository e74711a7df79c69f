"""Find (image, masks) file pairs in the published DSB2018 folder layouts.

* ``kaggle``: ``<root>/<id>/images/<id>.png`` with one mask per nucleus in
  ``<root>/<id>/masks/*.png``; ``root`` may be ``stage1_train`` (or the community-fixed copy)
  or the folder holding it. ``stage1_test`` has no masks: its labels come from
  ``stage1_solution.csv`` (see :func:`attach_solution`).
* ``flat``: ``<root>/inputs/<id>.png`` with one merged mask per image in
  ``<root>/masks/<id>.png``; ``root`` may also be the folder holding ``train/`` and ``test/``.

Files are paired by id (file name without suffix), never by listing order. Hidden files,
``__MACOSX`` folders and files that are not images (``Thumbs.db``, notes) are ignored.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

from nuclei.data.sources.io import IMAGE_SUFFIXES
from nuclei.data.sources.solution import SolutionImage, parse_solution
from nuclei.data.validation import DataValidationError, some

LAYOUTS = ("auto", "kaggle", "flat")
SPLITS = ("train", "test")
# Folders that may hold a split, when ``root`` is their parent.
KAGGLE_SPLIT_DIRS = {"train": "stage1_train", "test": "stage1_test"}
FLAT_SPLIT_DIRS = {"train": "train", "test": "test"}
SOLUTION_FILE = "stage1_solution.csv"
LOOKED_FOR = (
    "Kaggle (<id>/images/<id>.png + <id>/masks/*.png, optionally under stage1_train/ or "
    "stage1_test/) and flat (inputs/<id>.png + masks/<id>.png, optionally under train/ or test/)"
)


@dataclass(frozen=True)
class SampleFiles:
    """The files of one sample: its image and its labels (instance masks, a merged mask or
    solution CSV rows; none of them for an all-background sample)."""

    sample_id: str
    image: Path
    instance_masks: tuple[Path, ...] = ()
    merged_mask: Path | None = None
    solution: SolutionImage | None = None

    @property
    def has_instances(self) -> bool:
        """True when masks come one per nucleus (so instances are known exactly)."""
        return self.merged_mask is None


class LayoutError(FileNotFoundError):
    """No usable data set was found at a path; the message names it and what was expected."""


@dataclass
class DataSource:
    """What a scan of one data folder found.

    ``bad`` maps sample ids that cannot be used to the reason (each names the file);
    ``ignored`` lists files that are not images; ``notes`` are warnings.
    """

    root: Path
    base: Path
    layout: str
    samples: list[SampleFiles]
    bad: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)
    labels: Path | None = None


def _skipped(path: Path) -> bool:
    """Hidden files and macOS archive debris (``._x.png`` is not an image)."""
    return path.name.startswith(".") or path.name == "__MACOSX"


def _list(folder: Path, ignored: list[Path]) -> tuple[list[Path], list[Path]]:
    """Image files and sub-folders of ``folder`` (sorted); other files go to ``ignored``."""
    images, folders = [], []
    for path in sorted(folder.iterdir()):
        if _skipped(path):
            continue
        if path.is_dir():
            folders.append(path)
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            images.append(path)
        else:
            ignored.append(path)
    return images, folders


def _is_kaggle_base(folder: Path) -> bool:
    return folder.is_dir() and any(
        (child / "images").is_dir() for child in folder.iterdir() if not _skipped(child)
    )


def _is_flat_base(folder: Path) -> bool:
    return (folder / "inputs").is_dir() and (folder / "masks").is_dir()


def detect_layout(root: Path, layout: str = "auto", split: str = "train") -> tuple[str, Path]:
    """Return ``(layout, folder holding the samples)`` for ``root``, or raise LayoutError."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not root.is_dir():
        raise LayoutError(f"{root}: data root does not exist or is not a folder")
    if not any(not _skipped(p) for p in root.iterdir()):
        raise LayoutError(f"{root}: data root is empty; looked for {LOOKED_FOR}")
    if layout in ("auto", "kaggle"):
        for candidate in (root, root / KAGGLE_SPLIT_DIRS[split]):
            if _is_kaggle_base(candidate):
                return "kaggle", candidate
    if layout in ("auto", "flat"):
        for candidate in (root, root / FLAT_SPLIT_DIRS[split]):
            if _is_flat_base(candidate):
                return "flat", candidate
    wanted = LOOKED_FOR if layout == "auto" else f"the {layout} layout"
    raise LayoutError(f"{root}: no known layout found; looked for {wanted}")


def _pick_image(
    folder: Path, sample_id: str, images: list[Path], ignored: list[Path]
) -> Path | str:
    """The sample's image in ``<id>/images/`` (``<id>.*`` where there are several), or the
    reason there is none."""
    if len(images) == 1:
        return images[0]
    named = [p for p in images if p.stem == sample_id]
    if len(named) == 1:
        ignored.extend(p for p in images if p != named[0])
        return named[0]
    if not images:
        return f"{folder}: no image file (expected {folder}/{sample_id}.png)"
    return f"{folder}: {len(images)} images ({some(p.name for p in images)}), expected one"


def scan_kaggle(root: Path, base: Path) -> DataSource:
    """Scan ``base/<id>/images`` and ``base/<id>/masks`` folders."""
    source = DataSource(root=root, base=base, layout="kaggle", samples=[])
    _, folders = _list(base, source.ignored)
    for folder in folders:
        sample_id = folder.name
        images_dir, masks_dir = folder / "images", folder / "masks"
        if not images_dir.is_dir():
            if masks_dir.is_dir():
                source.bad[sample_id] = f"{folder}: has masks/ but no images/ folder"
            else:
                source.ignored.append(folder)
            continue
        images = _list(images_dir, source.ignored)[0]
        image = _pick_image(images_dir, sample_id, images, source.ignored)
        if isinstance(image, str):
            source.bad[sample_id] = image
            continue
        masks = tuple(_list(masks_dir, source.ignored)[0]) if masks_dir.is_dir() else ()
        source.samples.append(SampleFiles(sample_id, image, instance_masks=masks))
    return source


def _by_stem(files: list[Path], bad: dict[str, str], what: str) -> dict[str, Path]:
    groups: dict[str, list[Path]] = defaultdict(list)
    for path in files:
        groups[path.stem].append(path)
    for stem, paths in groups.items():
        if len(paths) > 1:
            bad[stem] = f"{paths[0].parent}: {len(paths)} {what} files for id {stem}: " + ", ".join(
                p.name for p in paths
            )
    return {stem: paths[0] for stem, paths in groups.items() if len(paths) == 1}


def scan_flat(root: Path, base: Path) -> DataSource:
    """Scan ``base/inputs/<id>.*`` and ``base/masks/<id>.*``, pairing by id."""
    source = DataSource(root=root, base=base, layout="flat", samples=[])
    images = _by_stem(_list(base / "inputs", source.ignored)[0], source.bad, "image")
    masks = _by_stem(_list(base / "masks", source.ignored)[0], source.bad, "mask")
    orphans = sorted(set(masks) - set(images) - set(source.bad))
    if orphans and not set(masks) & set(images):
        raise LayoutError(
            f"{base}: no mask in masks/ has the id of an image in inputs/ (they are paired by "
            f"file name, inputs/<id>.png with masks/<id>.png); images: "
            f"{some(sorted(images), 3)}; masks: {some(orphans, 3)}"
        )
    if orphans:
        source.notes.append(
            f"{base / 'masks'}: {len(orphans)} mask(s) without an image in inputs/ ignored: "
            f"{some(masks[m].name for m in orphans)}"
        )
    for sample_id in sorted(set(images) - set(source.bad)):
        source.samples.append(
            SampleFiles(sample_id, images[sample_id], merged_mask=masks.get(sample_id))
        )
    return source


def check_unique_ids(source: DataSource) -> None:
    """Refuse two samples of one folder that share an image id (a sample's name, or its
    image's file name without suffix: ``a/images/a.png`` and ``b/images/a.tif``). Which image
    the id means would be a guess, and a copied sample would land on both sides of the split.
    """
    claims: dict[str, list[Path]] = defaultdict(list)
    for sample in source.samples:
        for name in dict.fromkeys((sample.sample_id, sample.image.stem)):
            claims[name].append(sample.image)
    shared = {name: images for name, images in claims.items() if len(images) > 1}
    if shared:
        raise DataValidationError(
            str(source.base),
            [
                f"{', '.join(map(str, images[:-1]))} and {images[-1]} share the image id {name}"
                for name, images in sorted(shared.items())
            ],
            hint="Each image needs an id of its own (<id>/images/<id>.png): rename or remove "
            "the copies.",
        )


def scan_folder(root: str | Path, layout: str = "auto", split: str = "train") -> DataSource:
    """Find every sample of a data folder, in the named layout or the detected one; two
    samples sharing an image id raise DataValidationError naming both files."""
    root = Path(root).expanduser()
    found_layout, base = detect_layout(root, layout, split)
    scan = scan_kaggle if found_layout == "kaggle" else scan_flat
    source = scan(root, base)
    if not source.samples and not source.bad:
        raise LayoutError(f"{base}: the {found_layout} layout was found but holds no images")
    check_unique_ids(source)
    return source


def attach_solution(source: DataSource, labels: str | Path) -> DataSource:
    """Take labels from a solution CSV instead of mask files, matching rows to images by id.

    An id with rows but no image, or an image without rows, raises DataValidationError
    naming the ids; malformed rows make their image ``bad``.
    """
    labels = Path(labels).expanduser()
    if not labels.is_file():
        raise LayoutError(f"{labels}: solution CSV (data.source.test_labels) does not exist")
    solution = parse_solution(labels)
    image_ids = {s.sample_id for s in source.samples} | set(source.bad)
    problems = []
    no_image = sorted(set(solution.images) - image_ids)
    if no_image:
        problems.append(
            f"{labels}: {len(no_image)} image id(s) have rows but no image in {source.base}: "
            + some(no_image)
        )
    no_rows = sorted(image_ids - set(solution.images))
    if no_rows:
        problems.append(
            f"{labels}: no rows for {len(no_rows)} image(s) of {source.base}: " + some(no_rows)
        )
    if problems:
        raise DataValidationError(f"{labels} against {source.base}", problems)
    bad = dict(source.bad)
    for sample_id, messages in solution.problems.items():
        bad[sample_id] = "; ".join(messages)
    samples = [
        replace(s, instance_masks=(), merged_mask=None, solution=solution.images[s.sample_id])
        for s in source.samples
        if s.sample_id not in bad
    ]
    return replace(source, samples=samples, bad=bad, labels=labels)


def find_test_split(root: str | Path) -> tuple[Path, Path | None] | None:
    """A labelled test split next to the training data in ``root``, if there is one.

    ``root/test`` (flat layout) or ``root/stage1_test`` with ``root/stage1_solution.csv``
    (Kaggle). Returns ``(test folder, solution CSV or None)``.
    """
    root = Path(root).expanduser()
    flat = root / FLAT_SPLIT_DIRS["test"]
    if _is_flat_base(flat):
        return flat, None
    kaggle, csv = root / KAGGLE_SPLIT_DIRS["test"], root / SOLUTION_FILE
    if _is_kaggle_base(kaggle) and csv.is_file():
        return kaggle, csv
    return None


def find_samples(root: str | Path, layout: str = "auto") -> list[SampleFiles]:
    """Find all samples under ``root``; any sample whose files are unusable raises."""
    source = scan_folder(root, layout)
    if source.bad:
        raise DataValidationError(str(source.base), [source.bad[k] for k in sorted(source.bad)])
    return source.samples
