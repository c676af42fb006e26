"""Where each option's value comes from: the command line, the environment, the config file.

An option's value comes from, in order of precedence: the command line (``--influx-url``), the
environment (``QLOOP_INFLUX_URL``), a TOML config file given with ``--config-file`` (or
``QLOOP_CONFIG_FILE``; top-level keys, overridden by a table named after the command such as
``[cloud]`` or ``[api]``), and the default in :class:`qloop.settings.Settings`. Every command
loads its options the same way (:func:`load`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from qloop.settings import Settings, SettingsError, env_name


def read_config_file(path: str | Path | None) -> dict[str, Any]:
    """The TOML config file's document (empty without one)."""
    if not path:
        return {}
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SettingsError(f"cannot read config file {path}: {e}") from None


def load(
    command: str,
    given: Mapping[str, Any] | None = None,
    *,
    config: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """The settings of ``command`` (its config-file table's name): ``given`` (the options on
    the command line) over the environment, over the config file, over the defaults."""
    environ = os.environ if environ is None else environ
    config = config or {}
    table = config.get(command, {})
    if not isinstance(table, Mapping):
        raise SettingsError(f"config file: [{command}] must be a table")
    layers: list[tuple[str, Mapping[str, Any]]] = [
        ("config file", {k: v for k, v in config.items() if not isinstance(v, Mapping)}),
        (f"config file [{command}]", table),
        (
            "environment",
            {
                name: environ[env_name(name)]
                for name in Settings.model_fields
                if env_name(name) in environ
            },
        ),
        ("command line", dict(given or {})),
    ]
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    for where, layer in layers:
        for name, value in layer.items():
            if name not in Settings.model_fields:
                if where.startswith("config file"):
                    raise SettingsError(f"{where}: unknown option {name!r}")
                continue
            values[name], source[name] = value, where
    try:
        return Settings(**values)
    except ValidationError as e:
        first = e.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "?"
        where = source.get(name, "default")
        flag = "--" + name.replace("_", "-")
        raise SettingsError(
            f"{flag} ({env_name(name)}) from the {where}: {first['msg']}"
            f" (got {str(values.get(name))[:80]!r})"
        ) from None
