"""The Hydra run folder of ``nuclei-predict``: its output folder, unless the run will be refused.

:func:`predict_run_dir` (the ``nuclei.predict_run_dir`` resolver of ``conf/predict.yaml``)
makes the output folder itself Hydra's run folder, so the log and the composed config of a run
are kept with its results. When that folder overlaps the input, cannot be made, or is held by
a running prediction of this host, the command refuses it, and Hydra's own files go to the
folder it would use without ``output=`` instead of into it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from nuclei.inference.output_folder import can_be_made, overlap
from nuclei.inference.output_lock import held_here


def predict_run_dir(source: Any, output: Any, otherwise: Any) -> str:
    """``${nuclei.predict_run_dir:INPUT,OUTPUT,OTHERWISE}``: ``output`` (absolute) when a
    prediction of ``source`` may write into it now; else ``otherwise`` (``output`` null, or
    overlapping the input, impossible to make, held by another run)."""
    if source is None or output is None or overlap(str(source), str(output)) is not None:
        return str(otherwise)  # overlap first: nothing, not even a probe, touches the input
    if not can_be_made(str(output)) or held_here(str(output)):
        return str(otherwise)
    return str(Path(str(output)).expanduser().absolute())


def register_predict_run_dir() -> None:
    """Register the ``nuclei.predict_run_dir`` config resolver (once)."""
    if not OmegaConf.has_resolver("nuclei.predict_run_dir"):
        OmegaConf.register_new_resolver("nuclei.predict_run_dir", predict_run_dir)
