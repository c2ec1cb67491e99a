"""Typed configuration loading."""

from msvla_core.config.loader import ConfigError, from_dict, load_config, load_yaml

__all__ = ["ConfigError", "from_dict", "load_config", "load_yaml"]
