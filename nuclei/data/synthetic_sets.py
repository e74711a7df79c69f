"""The ``nuclei.synthetic_set`` resolver: a synthetic set as a folder path in a config.

``${nuclei.synthetic_set:CACHE_DIR,PROFILE,SEED,N}`` generates the set once (see
:func:`nuclei.synthetic.ensure_synthetic_dataset`) and stands for its ``stage1_train``
folder, so a config can point ``data.source.test_root`` at it, as ``conf/data/shifted.yaml``
does for the domain-shift benchmark.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from nuclei.synthetic import ensure_synthetic_dataset


def synthetic_set(cache_dir: str, profile: str, seed: int, n_images: int) -> str:
    """The ``stage1_train`` folder of synthetic set (profile, seed, n), generated if needed."""
    root = ensure_synthetic_dataset(
        Path(cache_dir).expanduser(), n_images=int(n_images), seed=int(seed), profile=profile
    )
    return str(root)


def register_synthetic_set_resolver() -> None:
    """Register ``nuclei.synthetic_set`` (idempotent)."""
    if not OmegaConf.has_resolver("nuclei.synthetic_set"):
        OmegaConf.register_new_resolver("nuclei.synthetic_set", synthetic_set, use_cache=True)
