"""Hydra configuration files, shipped inside the package as `nuclei.conf`.

Importing it registers what the YAML files refer to: the structured configs (the data
schema, ``postprocess/default``, ``objective/default``, the ``inherit`` sections of eval,
predict and tune) and the resolvers they interpolate (``nuclei.target_channels``,
``nuclei.run_dir``, ``nuclei.config_subdir``, ``nuclei.metric_label``, ``nuclei.if_resume``,
``nuclei.when_given``, ``nuclei.synthetic_set``, ``nuclei.predict_run_dir``).

Hydra imports it to compose any command's config, also only to print its ``--help``, so it
imports no heavy library (torch, Lightning, pandas, scikit-image): a resolver whose module
needs one is registered here by name and imports its module when a config first uses it.
A module that defines a resolver also registers it itself when imported, unless it already is.
"""

import importlib
from collections.abc import Callable
from typing import Any

from omegaconf import OmegaConf

from nuclei.data.config import DataConfig, register_data_schema
from nuclei.instances.postprocess_config import PostprocessConfig, register_postprocess_config
from nuclei.runs.inherit import register_inherit_configs
from nuclei.training.objective import register_objective

#: Resolver name -> (module, function), imported on first use; use_cache as the module's own.
_RESOLVERS = {
    "nuclei.target_channels": ("nuclei.data.targets", "target_channels", False),
    "nuclei.if_resume": ("nuclei.runs.run_folder", "if_resume", False),
    "nuclei.run_dir": ("nuclei.runs.run_dir", "_run_dir_resolver", False),
    "nuclei.config_subdir": ("nuclei.runs.run_dir", "_config_subdir_resolver", False),
    "nuclei.when_given": ("nuclei.runs.run_dir", "_when_given_resolver", False),
    "nuclei.synthetic_set": ("nuclei.data.synthetic_sets", "synthetic_set", True),
    "nuclei.predict_run_dir": ("nuclei.inference.output_folder", "predict_run_dir", False),
}


def _on_first_use(module: str, name: str) -> Callable[..., Any]:
    """A resolver calling ``module.name``, importing ``module`` the first time it runs."""

    def resolve(*args: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args)

    resolve.__name__ = name
    return resolve


for _resolver, (_module, _name, _use_cache) in _RESOLVERS.items():
    if not OmegaConf.has_resolver(_resolver):
        OmegaConf.register_new_resolver(
            _resolver, _on_first_use(_module, _name), use_cache=_use_cache
        )

register_data_schema()
register_postprocess_config()
register_objective()
register_inherit_configs({"data": DataConfig, "postprocess": PostprocessConfig})
