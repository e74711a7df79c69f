"""The Python API for notebooks: :class:`Segmenter`, :func:`show`, :func:`compose`,
:func:`build_datamodule` (also exported as ``nuclei.Segmenter`` and so on)."""

from nuclei.api.file_prediction import write_predict_args
from nuclei.api.notebook import build_datamodule, compose, show
from nuclei.api.segmenter import Segmenter

__all__ = ["Segmenter", "build_datamodule", "compose", "show", "write_predict_args"]
