"""What an evaluation scores with: the postprocessing (the run's own, tuned or given) and a
digest of the settings that differ from the run's, which names its result files."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any

from omegaconf import DictConfig

from nuclei.instances.postprocess import PostprocessConfig
from nuclei.runs.checkpoint import Run, postprocess_of
from nuclei.runs.inherit import given_values


def settings_digest(
    data_given: dict[str, Any], postprocess: PostprocessConfig, tta: str = "none"
) -> str:
    """Eight hex digits identifying an evaluation's data overrides, postprocessing and
    test-time augmentation."""
    settings: dict[str, Any] = {"data": data_given, "postprocess": asdict(postprocess)}
    if tta != "none":  # digests of evaluations without it stay as they were
        settings["tta"] = tta
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def run_postprocessing(run: Run, cfg: DictConfig) -> tuple[PostprocessConfig, bool]:
    """The postprocessing to score with, and whether it is the run's own (its config and
    tuned settings, none given on the command line)."""
    use_tuned = cfg.get("tuned_postprocess", True)
    postprocess = postprocess_of(run, cfg.get("postprocess"), use_tuned=use_tuned)
    own = use_tuned and not given_values(cfg.get("postprocess"))
    return postprocess, own or postprocess == postprocess_of(run)


def postprocess_source(run: Run, cfg: DictConfig) -> str:
    """Where the scoring postprocessing comes from: ``given`` (on the command line), ``tuned
    on val`` or ``tuned on out-of-fold`` (the run's postprocess.json, by what it was tuned
    on), or ``run config``."""
    if given_values(cfg.get("postprocess")):
        return "given"
    tuned = run.run_dir.tuned_postprocess_file
    if cfg.get("tuned_postprocess", True) and tuned.is_file():
        try:
            tuned_on = json.loads(tuned.read_text()).get("tuned_on", "val")
        except ValueError:
            tuned_on = "val"
        return f"tuned on {tuned_on}"
    return "run config"
