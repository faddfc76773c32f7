"""Per-environment platform configuration: ``load_config(name)`` returns a validated ``PlatformConfig``."""

from config.loader import ConfigError, available_environments, load_config, parse_config
from config.schema import PlatformConfig

__all__ = ["ConfigError", "PlatformConfig", "available_environments", "load_config", "parse_config"]
