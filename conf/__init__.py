"""Hydra configuration files, shipped inside the package as `nuclei.conf`.

Importing it registers what the YAML files refer to: the structured configs (the data
schema, ``postprocess/default``, ``objective/default``, the ``inherit`` sections of eval,
predict and tune) and the resolvers they interpolate (``nuclei.target_channels``, ``nuclei.run_dir``,
``nuclei.config_subdir``, ``nuclei.metric_label``, ``nuclei.if_resume``,
``nuclei.synthetic_set``, ``nuclei.predict_run_dir``).
"""

import nuclei.data.targets  # (registers nuclei.target_channels)
import nuclei.runs.resume  # (registers nuclei.if_resume)
import nuclei.runs.run_dir  # (registers nuclei.run_dir, nuclei.config_subdir)
from nuclei.data.config import DataConfig, register_data_schema
from nuclei.data.synthetic_sets import register_synthetic_set_resolver
from nuclei.inference.predict_run_dir import register_predict_run_dir
from nuclei.instances.postprocess import PostprocessConfig, register_postprocess_config
from nuclei.runs.inherit import register_inherit_configs
from nuclei.training.objective import register_objective

register_data_schema()
register_synthetic_set_resolver()
register_predict_run_dir()
register_postprocess_config()
register_objective()
register_inherit_configs({"data": DataConfig, "postprocess": PostprocessConfig})
