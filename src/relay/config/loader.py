"""Load settings from a TOML file and RELAY_* environment variables; report problems as
`FILE:key: problem` lines (or `RELAY_VAR:key: problem` for a value from the environment)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from relay.config.model import Settings
from relay.errors import ConfigError

__all__ = [
    "EMBEDDED_DEFAULTS",
    "ENV_PREFIX",
    "describe_error",
    "key_path",
    "load_settings",
    "read_toml",
]

ENV_PREFIX = "RELAY_"
ENV_NESTED_DELIMITER = "__"
EMBEDDED_DEFAULTS = "<embedded defaults>"


class _EnvironmentSettings(Settings, BaseSettings):
    """Settings whose values come from the file (as init arguments), overridden by RELAY_*."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        frozen=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)


def read_toml(path: Path, what: str = "configuration file") -> dict[str, Any]:
    """The TOML file's tables; ConfigError `FILE: problem` when it cannot be read or parsed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the {what}: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: the {what} is not UTF-8 text"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: invalid TOML: {exc}"]) from None


def key_path(location: tuple[int | str, ...]) -> str:
    key = ""
    for part in location:
        if isinstance(part, int):
            key += f"[{part}]"
        elif part.startswith(("function-", "lax-", "json-")) or "[" in part:
            continue
        else:
            key += f".{part}" if key else part
    return key


def _origin(location: tuple[int | str, ...], source: str) -> str:
    """The environment variable that set this key, if one did, else the file."""
    names = [str(part) for part in location if isinstance(part, str)]
    for depth in range(len(names), 0, -1):
        variable = ENV_PREFIX + ENV_NESTED_DELIMITER.join(names[:depth]).upper()
        if any(name.upper() == variable for name in os.environ):
            return variable
    return source


def describe_error(error: dict[str, Any]) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return "unknown key (check its spelling and section)"
    if error["type"] == "missing":
        return "required key is missing"
    return message


def load_settings(path: Path | None) -> tuple[Settings, str]:
    """Return the validated settings and the name of their source (file or embedded defaults)."""
    source = str(path) if path is not None else EMBEDDED_DEFAULTS
    data = read_toml(path) if path is not None else {}
    try:
        loaded = _EnvironmentSettings(**data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            location = tuple(error["loc"])
            problems.append(
                f"{_origin(location, source)}:{key_path(location)}: {describe_error(dict(error))}"
            )
        raise ConfigError(problems) from None
    except SettingsError as exc:
        raise ConfigError(
            [f"{ENV_PREFIX}*: a list or table value in the environment is not JSON: {exc}"]
        ) from None
    return Settings.model_validate(loaded.model_dump()), source
