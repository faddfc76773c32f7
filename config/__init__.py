"""Per-environment platform configuration: ``load_config(name)`` returns a validated ``PlatformConfig``.

What belongs here: the schema (every setting typed, with its default and its limits), the loader and
``environments/<name>.yaml``; each error names the key, the bad value and what is allowed. What does
not: anything that builds resources. Only the stage and the stacks read the configuration.
"""

from config.loader import ConfigError, available_environments, load_config, parse_config
from config.schema import PlatformConfig

__all__ = ["ConfigError", "PlatformConfig", "available_environments", "load_config", "parse_config"]
