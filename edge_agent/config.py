"""The edge agent's configuration: a TOML file, overridable by ``QLOOP_EDGE_*`` variables.

``examples/edge.toml`` is a complete, commented example. The sections::

    [device]            # identity, as announced in the birth message
    id = "ac-000123"
    model = "KFR-35GW"
    batch = "B20240517"
    serial = "SN-000123"
    firmware = "2.3.0"
    product = "air_conditioner"

    [broker]
    address = "broker.example.com:8883"
    username = "ac-000123"          # optional
    password = "..."                # optional; better QLOOP_EDGE_BROKER_PASSWORD
    tls_ca = "/etc/qloop/ca.pem"    # optional: enables TLS
    tls_cert = "/etc/qloop/ac-000123.pem"   # optional client certificate
    tls_key = "/etc/qloop/ac-000123.key"
    tls_insecure = false            # true skips the host name check (test rigs only)

    [sampling]
    period_s = 10.0
    block_rows = 60                 # rows per telemetry message at most
    block_max_age_s = 10.0          # the longest a row waits before its block is sent

    [buffer]
    path = "/var/lib/qloop/buffer.db"   # omit for an in-memory buffer (lost on restart)
    max_bytes = 268435456               # oldest telemetry is dropped beyond this
    max_age_s = 2592000                 # messages older than this are dropped
    synchronous = "NORMAL"              # FULL: also survive power loss (see disk_buffer.py)

    [publish]
    window = 100                    # messages in flight (unacknowledged) at most

    [metrics]
    status_file = "/run/qloop/edge-status.json"   # optional (see edge_agent/metrics.py)
    interval_s = 10.0

    [source]
    kind = "simulated"              # simulated | csv | command | sysfs (edge_agent/sources.py;
    seed = 0                        # simulated: simulators/source.py, model = "KFR-35GW")
    # csv:     path = "rec.csv", speed = 1.0, loop = true
    # command: command = "read-ac --port /dev/ttyUSB0", fields = ["return_c", ...],
    #          timeout_s = 5.0
    # sysfs:   [source.files] return_c = "/sys/class/hwmon/hwmon2/temp1_input"
    #          [source.scale] return_c = 0.001

    [[safety]]                      # omit to use the built-in rules; safety = [] for none
    kind = "overcurrent"
    field = "current_a"
    limit = 10.0
    above = true                    # false: fires when the value goes below the limit
    rearm = 1.0                     # hysteresis before the rule can fire again
    start_field = "compressor_on"   # optional: readings within blank_s of this field turning
    blank_s = 2.0                   #   on are judged only against limit * instant_factor
    instant_factor = 4.0            #   (a motor's starting current; see edge_agent/core.py)
    context = ["ambient_c", "return_c"]  # optional: fields whose values the event carries too

Environment variables override single values: ``QLOOP_EDGE_<SECTION>_<KEY>``, e.g.
``QLOOP_EDGE_BROKER_PASSWORD`` or ``QLOOP_EDGE_BUFFER_PATH`` (arrays and ``[[safety]]`` only
from the file).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from contract.errors import QloopError
from contract.mqtt import BrokerAddress
from edge_agent.agent import EdgeAgent, SensorSource
from edge_agent.buffer import Buffer, MemoryBuffer
from edge_agent.core import DEFAULT_SAFETY_RULES, Identity, SafetyRule
from edge_agent.metrics import StatusFile

SECTIONS = ("device", "broker", "sampling", "buffer", "publish", "metrics", "source")


class ConfigError(QloopError, ValueError):
    """The edge config says something the agent cannot use; the message names the key."""


SourceFactory = Callable[[Mapping[str, Any], Identity], SensorSource]
"""Builds a sensor source from the whole config and the device's identity: how a layer above
the edge agent (the simulator) adds a ``[source] kind`` without the agent importing it."""


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The config file with the environment's ``QLOOP_EDGE_<SECTION>_<KEY>`` values on top."""
    environ = os.environ if environ is None else environ
    try:
        with open(path, "rb") as f:
            cfg = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read edge config {path}: {e}") from None
    for key, value in environ.items():
        if key.startswith("QLOOP_EDGE_") and key.count("_") >= 3:
            section, _, name = key[len("QLOOP_EDGE_") :].lower().partition("_")
            if section in SECTIONS:
                cfg.setdefault(section, {})[name] = value
    return cfg


def to_bool(x: object) -> bool:
    """A TOML boolean, or an environment variable's ``true``/``false``/``1``/``0``/yes/no."""
    if isinstance(x, bool):
        return x
    text = str(x).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{x!r} is not a boolean")


def setting(
    cfg: Mapping[str, Any],
    section: str,
    key: str,
    default: Any = None,
    cast: Callable[[Any], Any] = str,
) -> Any:
    """``[section] key`` of the config, cast; ``default`` when missing (None: required)."""
    value = cfg.get(section, {}).get(key, default)
    if value is None:
        raise ConfigError(f"edge config: [{section}] {key} is required")
    try:
        return cast(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"edge config: [{section}] {key} = {value!r} is not a "
            f"{getattr(cast, '__name__', 'valid value')}"
        ) from None


def _opt(cfg: Mapping[str, Any], section: str, key: str, cast: Callable[[Any], Any]) -> Any:
    """An optional value: None when missing (or set to an empty string in the environment)."""
    value = cfg.get(section, {}).get(key)
    if value is None or value == "":
        return None
    return setting(cfg, section, key, cast=cast)


def _str_list(x: object) -> list[str]:
    if isinstance(x, str):
        return [s.strip() for s in x.split(",") if s.strip()]
    if isinstance(x, list) and all(isinstance(s, str) for s in x):
        return list(x)
    raise ValueError(x)


def build_source(
    cfg: Mapping[str, Any],
    identity: Identity,
    extra_sources: Mapping[str, SourceFactory] | None = None,
) -> SensorSource:
    """The ``[source]`` the config names: one of the agent's own kinds (csv, command, sysfs) or
    one of ``extra_sources`` (the ``qloop`` command adds ``simulated``)."""
    extra_sources = extra_sources or {}
    kind = setting(cfg, "source", "kind", "simulated")
    src = cfg.get("source", {})
    try:
        if kind in extra_sources:
            return extra_sources[kind](cfg, identity)
        if kind == "csv":
            from edge_agent.sources import CsvSource

            fields = _opt(cfg, "source", "fields", _str_list)
            return CsvSource(
                setting(cfg, "source", "path"),
                speed=setting(cfg, "source", "speed", 1.0, float),
                loop=setting(cfg, "source", "loop", True, to_bool),
                fields=fields,
            )
        if kind == "command":
            from edge_agent.sources import CommandSource

            return CommandSource(
                setting(cfg, "source", "command"),
                setting(cfg, "source", "fields", cast=_str_list),
                timeout_s=setting(cfg, "source", "timeout_s", 5.0, float),
            )
        if kind == "sysfs":
            from edge_agent.sources import SysfsSource

            files = src.get("files")
            if not isinstance(files, dict) or not files:
                raise ConfigError("edge config: [source.files] must map fields to files")
            scale = {k: float(v) for k, v in src.get("scale", {}).items()}
            return SysfsSource({k: str(v) for k, v in files.items()}, scale)
    except (OSError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"edge config: [source] {kind}: {e}") from None
    kinds = ", ".join(sorted({*extra_sources, "csv", "command", "sysfs"}))
    raise ConfigError(f"edge config: unknown [source] kind {kind!r} ({kinds})")


def build_buffer(cfg: Mapping[str, Any]) -> Buffer:
    path = _opt(cfg, "buffer", "path", str)
    max_messages = _opt(cfg, "buffer", "max_messages", int)
    max_bytes = _opt(cfg, "buffer", "max_bytes", int)
    max_age_s = _opt(cfg, "buffer", "max_age_s", float)
    if path is None:
        return MemoryBuffer(
            max_messages if max_messages is not None else 100_000,
            max_bytes=max_bytes,
            max_age_s=max_age_s,
        )
    from edge_agent.disk_buffer import DiskBuffer

    try:
        return DiskBuffer(
            path,
            max_messages=max_messages,
            max_bytes=max_bytes if max_bytes is not None else 256 * 1024 * 1024,
            max_age_s=max_age_s if max_age_s is not None else 30 * 86400.0,
            synchronous=setting(cfg, "buffer", "synchronous", "NORMAL"),
        )
    except (OSError, ValueError, RuntimeError) as e:
        raise ConfigError(f"edge config: [buffer] {path}: {e}") from None


def _names(value: Any, n: int) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"edge config: [[safety]] #{n}: context must be a list of field names")
    return tuple(value)


def build_rules(cfg: Mapping[str, Any]) -> tuple[SafetyRule, ...]:
    """``[[safety]]`` tables, or the built-in rules when there are none."""
    if "safety" not in cfg:
        return DEFAULT_SAFETY_RULES
    tables = cfg["safety"]
    if not isinstance(tables, list):
        raise ConfigError("edge config: safety must be an array of tables ([[safety]])")
    rules = []
    for n, t in enumerate(tables, start=1):
        if not isinstance(t, dict):
            raise ConfigError(f"edge config: [[safety]] #{n} is not a table")
        unknown = set(t) - {
            "kind", "field", "limit", "above", "rearm", "start_field", "blank_s", "instant_factor",
            "context",
        }  # fmt: skip
        if unknown:
            raise ConfigError(f"edge config: [[safety]] #{n}: unknown keys {sorted(unknown)}")
        try:
            rules.append(
                SafetyRule(
                    str(t["kind"]),
                    str(t["field"]),
                    float(t["limit"]),
                    above=to_bool(t.get("above", True)),
                    rearm=float(t.get("rearm", 0.5)),
                    start_field=str(t["start_field"]) if t.get("start_field") else None,
                    blank_s=float(t.get("blank_s", 0.0)),
                    instant_factor=float(t.get("instant_factor", 4.0)),
                    context=_names(t.get("context", []), n),
                )
            )
        except KeyError as e:
            raise ConfigError(f"edge config: [[safety]] #{n}: {e.args[0]} is required") from None
        except (TypeError, ValueError) as e:
            raise ConfigError(f"edge config: [[safety]] #{n}: {e}") from None
    return tuple(rules)


def build_agent(
    cfg: Mapping[str, Any], extra_sources: Mapping[str, SourceFactory] | None = None
) -> EdgeAgent:
    identity = Identity(
        device=setting(cfg, "device", "id"),
        model=setting(cfg, "device", "model"),
        batch=setting(cfg, "device", "batch"),
        serial=setting(cfg, "device", "serial"),
        firmware=setting(cfg, "device", "firmware"),
        product=setting(cfg, "device", "product", "air_conditioner"),
        sample_period_s=setting(cfg, "sampling", "period_s", 10.0, float),
    )
    try:
        broker = BrokerAddress.parse(
            setting(cfg, "broker", "address", "127.0.0.1:1883"),
            username=_opt(cfg, "broker", "username", str),
            password=_opt(cfg, "broker", "password", str),
            tls_ca=_opt(cfg, "broker", "tls_ca", str),
            tls_cert=_opt(cfg, "broker", "tls_cert", str),
            tls_key=_opt(cfg, "broker", "tls_key", str),
            tls_insecure=setting(cfg, "broker", "tls_insecure", False, to_bool),
        )
    except ValueError as e:
        raise ConfigError(f"edge config: {e}") from None
    for f in (broker.tls_ca, broker.tls_cert, broker.tls_key):
        if f is not None and not Path(f).is_file():
            raise ConfigError(f"edge config: [broker] TLS file {f} does not exist")
    status_path = _opt(cfg, "metrics", "status_file", str)
    rules = build_rules(cfg)
    source = build_source(cfg, identity, extra_sources)
    unknown = [
        f
        for r in rules
        for f in (r.field, r.start_field, *r.context)
        if f and f not in source.fields
    ]
    if "safety" in cfg and unknown:
        raise ConfigError(
            f"edge config: [[safety]] on fields the source does not have: "
            f"{', '.join(unknown)} (fields: {', '.join(source.fields)})"
        )
    return EdgeAgent(
        identity,
        source,
        build_buffer(cfg),
        broker,
        block_rows=setting(cfg, "sampling", "block_rows", 60, int),
        block_max_age_s=setting(cfg, "sampling", "block_max_age_s", 10.0, float),
        rules=rules,
        window=setting(cfg, "publish", "window", 100, int),
        status_file=StatusFile(status_path) if status_path else None,
        status_interval_s=setting(cfg, "metrics", "interval_s", 10.0, float),
    )
