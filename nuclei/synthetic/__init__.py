"""Synthetic DSB2018-like data set in the Kaggle ``stage1_train`` layout, cached on disk.

- ``profiles``: generator profiles (``default``, ``shifted``): the imaging conditions, a config;
- ``conditions``: one image's imaging conditions, drawn and scaled by the profile;
- ``geometry``: nucleus shapes, placement, rasterisation into labels, cleaning;
- ``renderers``: the fluorescence, tissue and brightfield images, and the random fields,
  blur, camera noise and illumination they share;
- ``render``: one sample's plan (id, family, size) and rendering;
- ``cache``: PNG files, the worker pool, the cached sets and their folder names;
- ``__main__``: ``python -m nuclei.synthetic OUT --n 670 --seed 0 [--profile shifted]``.
"""

from nuclei.synthetic.cache import (
    GENERATOR_VERSION,
    ensure_synthetic_dataset,
    generate_synthetic_dataset,
    synthetic_root,
)
from nuclei.synthetic.profiles import (
    PROFILES,
    SHIFTED_SEED,
    GeneratorProfile,
    get_profile,
)
from nuclei.synthetic.render import FAMILIES, SamplePlan, image_id, plan_sample, render_sample

__all__ = [
    "FAMILIES",
    "GENERATOR_VERSION",
    "PROFILES",
    "SHIFTED_SEED",
    "GeneratorProfile",
    "SamplePlan",
    "ensure_synthetic_dataset",
    "generate_synthetic_dataset",
    "get_profile",
    "image_id",
    "plan_sample",
    "render_sample",
    "synthetic_root",
]
