"""The ``data`` configuration: one validated dataclass per concern, and the Hydra schema.

``conf/data/default.yaml`` is checked against :class:`DataConfig` when the configs are
composed (a typo or a wrong type fails there); each group's ``__post_init__`` checks its
values when the data module is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from nuclei.data.sources.layouts import LAYOUTS
from nuclei.data.splits import check_folds
from nuclei.data.targets import TARGETS
from nuclei.data.validation import ON_BAD_FILE
from nuclei.synthetic.profiles import PROFILES

__all__ = [
    "SIZE_MODES",
    "AugmentationConfig",
    "DataConfig",
    "IntensityConfig",
    "LoaderConfig",
    "SizeConfig",
    "SourceConfig",
    "SplitConfig",
    "TargetConfig",
    "as_config",
    "register_data_schema",
]

#: How images meet the network: resized to one size, or kept native and cropped/padded.
SIZE_MODES: tuple[str, ...] = ("resize", "crop")
DATA_MODULE = "nuclei.data.datamodule.NucleiDataModule"


def _one_of(key: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"data.{key} must be one of {allowed}, got {value!r}")


def _positive_int(key: str, value: object, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"data.{key} must be a positive integer, got {value!r}")


def _int(key: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"data.{key} must be an integer, got {value!r}")


def _flag(key: str, value: object, optional: bool = False) -> None:
    if not isinstance(value, bool) and not (optional and value is None):
        raise ValueError(f"data.{key} must be true or false, got {value!r}")


@dataclass
class SourceConfig:
    """Where samples come from: a folder (and its test split), or the synthetic set."""

    root: str | None = None
    layout: str = "auto"
    test_root: str | None = None
    test_labels: str | None = None
    on_bad_file: str = "error"
    cache_dir: str = "~/.cache/nuclei"
    decode_workers: int | None = None
    synthetic_images: int = 670
    synthetic_seed: int = 0
    synthetic_profile: str = "default"

    def __post_init__(self) -> None:
        _one_of("source.layout", self.layout, LAYOUTS)
        _one_of("source.on_bad_file", self.on_bad_file, ON_BAD_FILE)
        _positive_int("source.decode_workers", self.decode_workers, optional=True)
        _positive_int("source.synthetic_images", self.synthetic_images)
        _int("source.synthetic_seed", self.synthetic_seed)
        _one_of("source.synthetic_profile", self.synthetic_profile, tuple(PROFILES))


@dataclass
class SizeConfig:
    """How images meet the network: resized to ``image_size``, or cropped and padded."""

    mode: str = "resize"
    image_size: int = 128
    crop_size: int = 256
    pad_multiple: int = 32

    def __post_init__(self) -> None:
        _one_of("size.mode", self.mode, SIZE_MODES)
        for name in ("image_size", "crop_size", "pad_multiple"):
            _positive_int(f"size.{name}", getattr(self, name))


@dataclass
class AugmentationConfig:
    """Training augmentation (image and labels together, :mod:`nuclei.data.transforms`).

    Switches, and strengths where 0 means off: ``scale`` zooms by a factor in
    ``[1/(1+scale), 1+scale]``, ``gamma`` draws a gamma in ``[1/(1+gamma), 1+gamma]``,
    ``blur`` is the largest Gaussian sigma in pixels, ``noise`` the largest Gaussian noise
    standard deviation as a fraction of the [0, 1] intensity range.
    """

    hflip: bool = True
    vflip: bool = False
    rot90: bool = False
    brightness_contrast: bool = False
    invert: bool = False
    scale: float = 0.0
    gamma: float = 0.0
    blur: float = 0.0
    noise: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("hflip", "vflip", "rot90", "brightness_contrast", "invert"):
            _flag(f"augmentation.{name}", getattr(self, name))
        for name in ("scale", "gamma", "blur"):
            _number_in(f"augmentation.{name}", getattr(self, name), 0.0, None)
        _number_in("augmentation.noise", self.noise, 0.0, 1.0)
        _int("augmentation.seed", self.seed)


def _number_in(key: str, value: object, low: float, high: float | None) -> None:
    """Raise unless ``value`` is a number in ``[low, high]`` (``high`` None: no upper bound)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"data.{key} must be a number, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"data.{key} must be {bounds}, got {value}")


#: How images become the network's [0, 1] input (:mod:`nuclei.data.intensity`).
NORMALIZE_MODES: tuple[str, ...] = ("none", "percentile")


@dataclass
class IntensityConfig:
    """Intensity normalisation: 8-bit values / 255 (``none``), or each image and channel
    stretched between its ``low`` and ``high`` percentiles (``percentile``, CSBDeep's 1, 99.8)."""

    normalize: str = "none"
    low: float = 1.0
    high: float = 99.8

    def __post_init__(self) -> None:
        _one_of("intensity.normalize", self.normalize, NORMALIZE_MODES)
        _number_in("intensity.low", self.low, 0.0, 100.0)
        _number_in("intensity.high", self.high, 0.0, 100.0)
        if self.low >= self.high:
            raise ValueError(
                f"data.intensity.low must be below data.intensity.high, got low={self.low} "
                f"and high={self.high}"
            )


@dataclass
class SplitConfig:
    """The train/val split: drawn from ``seed`` (keeping each image kind's share on both
    sides when ``stratify``), or read from a recorded ``split.json``. With ``folds`` (K), the
    validation side is fold ``fold`` of K disjoint folds covering every image (and
    ``val_fraction`` is not used); with ``folds_file``, fold ``fold`` of the user's folds
    (nnU-Net's ``splits_final.json``, or a CSV of ``id,fold``). ``groups_file`` (a CSV of
    ``id,group``) gives the groups to stratify by instead of the image kinds. A recorded
    ``file`` fixes the split whatever the other keys say."""

    val_fraction: float = 0.2
    seed: int = 0
    file: str | None = None
    stratify: bool = True
    folds: int | None = None
    fold: int = 0
    folds_file: str | None = None
    groups_file: str | None = None

    def __post_init__(self) -> None:
        fraction = self.val_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, int | float):
            raise ValueError(f"data.split.val_fraction must be a number, got {fraction!r}")
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"data.split.val_fraction must be in (0, 1), got {fraction}")
        _int("split.seed", self.seed)
        _flag("split.stratify", self.stratify)
        _int("split.fold", self.fold)
        if self.folds is not None:
            check_folds(self.folds, self.fold, prefix="data.split.")
        for key, path in (("folds_file", self.folds_file), ("groups_file", self.groups_file)):
            if path is not None and (not isinstance(path, str) or not path.strip()):
                raise ValueError(f"data.split.{key} must be a file path or null, got {path!r}")
        if self.folds_file is not None and self.folds is not None:
            raise ValueError(
                "data.split.folds_file gives the folds and their number: drop data.split.folds "
                "(or the file)"
            )
        if self.groups_file is not None and not self.stratify:
            raise ValueError(
                "data.split.groups_file gives the groups to stratify by, but "
                "data.split.stratify=false: drop one of them"
            )


@dataclass
class TargetConfig:
    """What the network learns (:mod:`nuclei.data.targets`)."""

    kind: str = "binary"
    border_width: int = 1

    def __post_init__(self) -> None:
        _one_of("target.kind", self.kind, tuple(TARGETS))
        _positive_int("target.border_width", self.border_width)


@dataclass
class LoaderConfig:
    """Batch sizes and DataLoader workers."""

    batch_size: int = 8
    eval_batch_size: int | None = None
    num_workers: int = 0
    pin_memory: bool | None = None

    def __post_init__(self) -> None:
        _positive_int("loader.batch_size", self.batch_size)
        _positive_int("loader.eval_batch_size", self.eval_batch_size, optional=True)
        _int("loader.num_workers", self.num_workers)
        if self.num_workers < 0:
            raise ValueError(f"data.loader.num_workers must be >= 0, got {self.num_workers}")
        _flag("loader.pin_memory", self.pin_memory, optional=True)


@dataclass
class DataConfig:
    """The whole ``data`` section: what ``instantiate(cfg.data)`` builds, and its groups."""

    _target_: str = DATA_MODULE
    source: SourceConfig = field(default_factory=SourceConfig)
    size: SizeConfig = field(default_factory=SizeConfig)
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    intensity: IntensityConfig = field(default_factory=IntensityConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    target: TargetConfig = field(default_factory=TargetConfig)
    loader: LoaderConfig = field(default_factory=LoaderConfig)


#: The groups of :class:`DataConfig` and the dataclass of each.
GROUPS: dict[str, type] = {
    "source": SourceConfig,
    "size": SizeConfig,
    "augmentation": AugmentationConfig,
    "intensity": IntensityConfig,
    "split": SplitConfig,
    "target": TargetConfig,
    "loader": LoaderConfig,
}

Config = TypeVar("Config")


def as_config(cls: type[Config], value: Config | Mapping[str, Any] | None) -> Config:
    """``value`` as a ``cls``: as is, built from a mapping (validated), or the defaults."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, DictConfig):
        value = OmegaConf.to_container(value, resolve=True)
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a {cls.__name__} or a mapping, got {type(value).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(value) - known)
    if unknown:
        group = next((g for g, c in GROUPS.items() if c is cls), cls.__name__)
        raise ValueError(
            f"data.{group} has no key(s) {', '.join(map(repr, unknown))}; "
            f"its keys are {', '.join(sorted(known))}"
        )
    return cls(**dict(value))


def register_data_schema() -> None:
    """Store :class:`DataConfig` as ``data/schema``, the base of ``conf/data/default.yaml``."""
    ConfigStore.instance().store(group="data", name="schema", node=DataConfig)
