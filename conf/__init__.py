"""Hydra configuration files, shipped inside the package as `nuclei.conf`."""

# Registers the `nuclei.target_channels` resolver that conf/model/*.yaml interpolate.
import nuclei.data.targets  # noqa: E402, F401
