"""Configuration: one typed, immutable settings model loaded from TOML and RELAY_* variables."""

from relay.config.loader import EMBEDDED_DEFAULTS, load_settings
from relay.config.model import Settings

__all__ = ["EMBEDDED_DEFAULTS", "Settings", "load_settings"]
