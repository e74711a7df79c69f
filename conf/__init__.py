"""Hydra configuration files, shipped inside the package as `nuclei.conf`."""
