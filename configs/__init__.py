"""The shipped YAML files (stage configs and taxonomy/) as package data.

Installed as the package ``hierarchy.configs`` (see pyproject.toml) and found with
``hierarchy.config.config_dir()``; this file only makes the folder a package an editable install can map.
"""
