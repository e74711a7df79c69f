"""nuclei: cell-nuclei segmentation on DSB2018 with PyTorch Lightning and Hydra.

The notebook API (:mod:`nuclei.api`) is exported here and imported on first use, so that
``import nuclei`` stays instant (torch and Lightning take seconds to import):

>>> import nuclei
>>> seg = nuclei.Segmenter.from_checkpoint("outputs/train/<run>/checkpoints/last.ckpt")
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

# albumentations asks PyPI for a newer version of itself when imported (an HTTPS request with
# a 2 s timeout, DNS not included) in every process that imports it: each command, DataLoader
# worker and DDP process. Offline (a cluster node) that delays them; anywhere it reports use.
# Set here, before any of our modules imports it; NO_ALBUMENTATIONS_UPDATE=0 restores it.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

#: Public names and the module defining each.
_API = {
    "Segmenter": "nuclei.api.segmenter",
    "show": "nuclei.api.notebook",
    "compose": "nuclei.api.notebook",
    "build_datamodule": "nuclei.api.notebook",
}
__all__ = ["Segmenter", "__version__", "build_datamodule", "compose", "show"]

if TYPE_CHECKING:
    from nuclei.api.notebook import build_datamodule, compose, show
    from nuclei.api.segmenter import Segmenter


def __getattr__(name: str) -> Any:
    """Import an API name on first use (PEP 562)."""
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nuclei' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
