"""The kind of a microscopy image, from simple statistics: the DSB2018 image families.

DSB2018 (stage1_train) holds three families: grey fluorescence (bright nuclei on a dark
background), colour H&E-like stained tissue (purple nuclei on a bright pink background) and
grey brightfield (dark nuclei on a bright background). Grey images are stored as RGB(A) with
equal channels, so two statistics tell the families apart:

- colour: the channels differ meaningfully, on average over the image (``COLOUR_SPREAD``);
  compression or colour noise on a grey image stays far below it. Every colour image is
  called ``"tissue"``: in DSB2018 all stained tissue is colour and all else is grey.
- background: nuclei cover well under half of nearly every image, so the median is the
  background level. Fluorescence backgrounds sit at 0-20% of the value range (the dim
  DSB2018 images near 10%; synthetic medians up to 12%, 19% in the shifted set), brightfield
  (and tissue) backgrounds at 50-90% (synthetic medians from 58%): a grey image whose median
  is below ``BRIGHT_BACKGROUND`` (30%) is fluorescence, else brightfield.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

#: The image kinds, named after the DSB2018 families.
KINDS: tuple[str, ...] = ("fluorescence", "tissue", "brightfield")

#: Mean over pixels of (largest - smallest channel), as a fraction of the value range, at and
#: above which an image is colour (about 8 grey levels of 255; H&E is several times that).
COLOUR_SPREAD = 0.03
#: Median brightness (fraction of the value range) at and above which a grey image has a
#: bright background (brightfield) rather than a dark one (fluorescence).
BRIGHT_BACKGROUND = 0.3
# Statistics are taken on at most about this many pixels (a regular subsample).
MAX_PIXELS = 1 << 18


def _value_range(image: np.ndarray) -> float:
    if np.issubdtype(image.dtype, np.integer):
        return float(np.iinfo(image.dtype).max)
    return 1.0  # floating point images: values in [0, 1]


def image_kind(image: np.ndarray) -> str:
    """``"fluorescence"``, ``"tissue"`` or ``"brightfield"`` for a (H, W), (H, W, 3) or
    (H, W, 4) image (uint8 RGB as decoded; alpha is ignored)."""
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    if image.ndim not in (2, 3) or image.size == 0:
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {image.shape}")
    step = max(1, int(np.ceil(np.sqrt(image.shape[0] * image.shape[1] / MAX_PIXELS))))
    pixels = image[::step, ::step].astype(np.float32) / _value_range(image)
    if pixels.ndim == 3 and pixels.shape[2] > 1:
        spread = float((pixels.max(axis=2) - pixels.min(axis=2)).mean())
        if spread >= COLOUR_SPREAD:
            return "tissue"
        pixels = pixels.mean(axis=2)
    elif pixels.ndim == 3:
        pixels = pixels[..., 0]
    return "brightfield" if float(np.median(pixels)) >= BRIGHT_BACKGROUND else "fluorescence"


def image_kinds(ids: Sequence[str], images: Sequence[np.ndarray]) -> dict[str, str]:
    """Each id's :func:`image_kind`, for ``images`` given in the order of ``ids``."""
    if len(ids) != len(images):
        raise ValueError(f"{len(ids)} ids but {len(images)} images")
    return {sample_id: image_kind(image) for sample_id, image in zip(ids, images, strict=True)}


def ordered_kinds(found: Iterable[str]) -> list[str]:
    """The kinds ``found``, in :data:`KINDS` order, any other name after them, sorted."""
    found = set(found)
    return [k for k in KINDS if k in found] + sorted(found - set(KINDS))


def kind_counts(ids: Iterable[str], kinds: Mapping[str, str]) -> dict[str, int]:
    """How many of ``ids`` are of each kind, by kind name."""
    return dict(sorted(Counter(kinds[i] for i in ids).items()))


def kinds_summary(train: Iterable[str], val: Iterable[str], kinds: Mapping[str, str]) -> str:
    """Each kind's count on both sides, for the log: ``fluorescence 436/109, tissue 86/22``."""
    on_train, on_val = kind_counts(train, kinds), kind_counts(val, kinds)
    return ", ".join(
        f"{kind} {on_train.get(kind, 0)}/{on_val.get(kind, 0)}"
        for kind in sorted(set(on_train) | set(on_val))
    )
