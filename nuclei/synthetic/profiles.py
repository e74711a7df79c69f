"""Generator profiles: the imaging conditions a synthetic set is drawn under, as a config.

A profile scales the conditions each image draws (it never changes which family, size or seed
an image has), so two profiles rendered from the same seed show the same specimens under
different microscopes: the ratios below are what the rendered pixels differ by.

- ``default``: the training set's range, widened to what real DSB2018 fluorescence shows.
- ``shifted``: conditions no training uses, for a domain-shift benchmark: dimmer and
  lower-contrast fluorescence, smaller and denser nuclei, more blur and noise, paler and
  re-hued tissue stains. Its sets are drawn from another seed by default (``SHIFTED_SEED``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class GeneratorProfile:
    """Knobs of the imaging conditions; 1.0 (or 0.0 for the hue) leaves a draw unchanged."""

    name: str
    #: Fluorescence: mean nucleus gray level above the background (nuclei brightness).
    fluo_intensity_scale: float = 1.0
    #: Fluorescence: background gray level. Contrast scales by intensity / background.
    fluo_background_scale: float = 1.0
    #: Fluorescence: share of dim images (nuclei at 15-40% of 255 over a background near 10%).
    dim_share: float = 0.35
    #: Fluorescence: share of images made of dense clumps of touching, textured nuclei.
    dense_share: float = 0.2
    #: Nucleus radius (all families): the mean nucleus area scales by its square.
    size_scale: float = 1.0
    #: Number of nuclei drawn per image (all families), at the same image size.
    density_scale: float = 1.0
    #: Sigma of the optical blur (all families).
    blur_scale: float = 1.0
    #: Standard deviation of the camera noise (all families).
    noise_scale: float = 1.0
    #: Optical density of nuclei in tissue and brightfield images (their contrast).
    absorption_scale: float = 1.0
    #: Tissue: rotation of both stain colours about the gray axis, in degrees (hue shift).
    stain_hue_shift: float = 0.0

    def settings(self) -> dict[str, Any]:
        """All fields as a JSON-ready dict (recorded in a cached set's manifest)."""
        return asdict(self)


DEFAULT_SEED = 0
#: Seed the shifted set is drawn from unless told otherwise: none of its images is in training.
SHIFTED_SEED = 1000

PROFILES: dict[str, GeneratorProfile] = {
    "default": GeneratorProfile("default"),
    "shifted": GeneratorProfile(
        "shifted",
        fluo_intensity_scale=0.6,
        fluo_background_scale=1.5,
        dim_share=0.5,
        dense_share=0.3,
        size_scale=0.8,
        density_scale=1.4,
        blur_scale=1.5,
        noise_scale=1.5,
        absorption_scale=0.75,
        stain_hue_shift=25.0,
    ),
}


def get_profile(profile: str | GeneratorProfile) -> GeneratorProfile:
    """The profile named ``profile`` (a ``GeneratorProfile`` is returned as is)."""
    if isinstance(profile, GeneratorProfile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown generator profile {profile!r} (known: {known})") from None
