"""The Python API for notebooks: :class:`Segmenter`, :func:`show`, :func:`compose`,
:func:`build_datamodule` (also exported as ``nuclei.Segmenter`` and so on)."""

from nuclei.api.configs import build_datamodule, compose
from nuclei.api.display import show
from nuclei.api.predict_args import write_predict_args
from nuclei.api.segmenter import Segmenter

__all__ = ["Segmenter", "build_datamodule", "compose", "show", "write_predict_args"]
