"""The device contract (CONTRACTS.md §1): topic names and payloads, bytes in and values out.

Pure code, no I/O: the edge agent encodes with it, the cloud worker decodes with it, and anything
that is not a valid message raises :class:`DecodeError` with a reason a person can act on.

Decoding is strict about structure (types, required keys, version, sizes) and lenient about
values where strictness would lose good data: a non-finite number (``NaN``, ``Infinity``, which
some firmware JSON encoders emit) in a telemetry row becomes ``None`` ("sensor gave no value").
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import Any

import orjson

from contract.errors import QloopError

VERSION = 1
ROOT = "qloop/v1"
PARTITIONS = 64
KINDS = ("birth", "telemetry", "event", "status")
RETAINED = {"birth": True, "telemetry": False, "event": False, "status": True}
STATUS_VALUES = ("online", "offline")

MAX_PAYLOAD_BYTES = 1_048_576  # one telemetry block; a bigger one is refused, not truncated
MAX_ROWS = 20_000
MAX_FIELDS = 256

_DEVICE = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"  # a device id (CONTRACTS.md §1)
_DEVICE_RE = re.compile(_DEVICE + r"\Z")
_FIELD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")

Value = float | None

# The air_conditioner product class's telemetry fields (CONTRACTS.md §1), in contract order.
# Another product class declares its own; fields a detector does not know are still stored.
AIR_CONDITIONER_FIELDS: tuple[str, ...] = (
    "ts",
    "setpoint_c",
    "return_c",
    "supply_c",
    "ambient_c",
    "compressor_on",
    "fan_speed",
    "current_a",
    "noise_db",
    "vibration_g",
)


class DecodeError(QloopError, ValueError):
    """A message that does not follow the contract; ``reason`` says what is wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- topics -------------------------------------------------------------------------------


def valid_device(device: str) -> bool:
    return isinstance(device, str) and _DEVICE_RE.match(device) is not None


def partition(device: str) -> int:
    """The device's partition, ``zlib.crc32(device) % 64``."""
    return zlib.crc32(device.encode()) % PARTITIONS


def topic(device: str, kind: str) -> str:
    """``qloop/v1/{pp}/{device}/{kind}`` for a valid device id and message kind."""
    if not valid_device(device):
        raise ValueError(f"invalid device id {device!r}")
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    return f"{ROOT}/{partition(device):02d}/{device}/{kind}"


@dataclass(frozen=True, slots=True)
class Topic:
    partition: int
    device: str
    kind: str


# What parse_topic() accepts, as one pattern: the device and kind as in valid_device() and
# KINDS, the partition as two ASCII digits (whether it is the device's is checked after).
_TOPIC_RE = re.compile(rf"{re.escape(ROOT)}/([0-9][0-9])/({_DEVICE})/({'|'.join(KINDS)})")


def parse_topic(name: str) -> Topic:
    """``qloop/v1/{pp}/{device}/{kind}`` as a :class:`Topic`; :class:`DecodeError` naming what
    is wrong otherwise. A topic that matches the pattern with the device's partition is taken
    at once (every message's topic is parsed); anything else goes through the checks one by
    one, which accept or refuse it with the reason."""
    m = _TOPIC_RE.fullmatch(name) if type(name) is str else None
    if m is not None:
        pp, device, kind = m.groups()
        if int(pp) == partition(device):
            return Topic(int(pp), device, kind)
    return _parse_topic_checked(name)


def _parse_topic_checked(name: str) -> Topic:
    parts = name.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != ROOT:
        raise DecodeError(f"topic {name!r} is not qloop/v1/<pp>/<device>/<kind>")
    pp, device, kind = parts[2], parts[3], parts[4]
    if not (len(pp) == 2 and pp.isdigit()):
        raise DecodeError(f"topic {name!r}: partition must be two digits")
    if not valid_device(device):
        raise DecodeError(f"topic {name!r}: invalid device id")
    if kind not in KINDS:
        raise DecodeError(f"topic {name!r}: unknown message kind {kind!r}")
    if int(pp) != partition(device):
        raise DecodeError(f"topic {name!r}: partition {pp} is not crc32(device) % 64")
    return Topic(int(pp), device, kind)


def parse_partitions(spec: str) -> list[int]:
    """``"0-15,32,40-41"`` → sorted partition numbers; raises ValueError on anything else."""
    out: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        a, b = int(lo), int(hi) if hi else int(lo)
        if not (0 <= a <= b < PARTITIONS):
            raise ValueError(f"partition range {part!r} is outside 0-{PARTITIONS - 1}")
        out.update(range(a, b + 1))
    if not out:
        raise ValueError(f"no partitions in {spec!r}")
    return sorted(out)


def subscriptions(partitions: Iterable[int]) -> list[str]:
    """The topic filters a worker for these partitions subscribes to."""
    return [f"{ROOT}/{p:02d}/+/#" for p in partitions]


# --- messages -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Birth:
    device: str
    product: str
    model: str
    batch: str
    serial: str
    firmware: str
    sample_period_s: float
    ts: float
    extra: Mapping[str, Any] = field(default_factory=dict)  # optional fields, kept as sent


@dataclass(frozen=True, slots=True)
class Telemetry:
    device: str
    seq: int
    fields: tuple[str, ...]
    rows: tuple[tuple[Value, ...], ...]

    def column(self, name: str) -> list[Value]:
        i = self.fields.index(name)
        return [r[i] for r in self.rows]


@dataclass(frozen=True, slots=True)
class Event:
    device: str
    seq: int
    ts: float
    kind: str
    value: float | None
    limit: float | None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Status:
    device: str
    online: bool


Message = Birth | Telemetry | Event | Status

_BIRTH_KEYS = ("product", "model", "batch", "serial", "firmware")


def _finite_or_none(x: Value) -> Value:
    return x if x is None or math.isfinite(x) else None


def encode(msg: Message) -> bytes:
    """The payload bytes for a message (status is plain text, the rest compact JSON)."""
    if isinstance(msg, Status):
        return b"online" if msg.online else b"offline"
    if isinstance(msg, Telemetry):
        body: dict[str, Any] = {
            "v": VERSION,
            "device": msg.device,
            "seq": msg.seq,
            "fields": list(msg.fields),
            "rows": msg.rows,  # tuples encode as JSON arrays
        }
        # Rows from DeviceCore are already clean, so the common case encodes them as they are;
        # only a block with a NaN or infinity in it (allow_nan=False refuses it) is rebuilt
        # value by value. Hot path: the fleet simulator encodes every block of 10,000 units.
        try:
            return _DUMPS(body).encode()
        except ValueError:
            body["rows"] = [[_finite_or_none(x) for x in row] for row in msg.rows]
    elif isinstance(msg, Event):
        body = {
            **msg.extra,
            "v": VERSION,
            "device": msg.device,
            "seq": msg.seq,
            "ts": msg.ts,
            "kind": msg.kind,
            "value": _finite_or_none(msg.value),
            "limit": _finite_or_none(msg.limit),
        }
    elif isinstance(msg, Birth):
        body = {
            **msg.extra,
            "v": VERSION,
            "device": msg.device,
            "product": msg.product,
            "model": msg.model,
            "batch": msg.batch,
            "serial": msg.serial,
            "firmware": msg.firmware,
            "sample_period_s": msg.sample_period_s,
            "ts": msg.ts,
        }
    else:
        raise TypeError(f"not a qloop message: {type(msg).__name__}")
    return _DUMPS(body).encode()


_DUMPS = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def kind_of(msg: Message) -> str:
    return {Birth: "birth", Telemetry: "telemetry", Event: "event", Status: "status"}[type(msg)]


def _nonfinite(_: str) -> None:
    return None


def _load_json(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise DecodeError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        body = orjson.loads(payload)  # several times the standard parser's speed on blocks
    except orjson.JSONDecodeError:
        # not strict UTF-8 JSON (NaN or Infinity, a huge integer, another encoding...): the
        # standard parser decides and names what is wrong, so orjson changes speed, not what
        # is accepted
        try:
            body = json.loads(payload, parse_constant=_nonfinite)
        except (UnicodeDecodeError, ValueError) as e:
            raise DecodeError(f"payload is not UTF-8 JSON: {e}") from None
    if not isinstance(body, dict):
        raise DecodeError("payload must be a JSON object")
    check_version(body)
    return body


def check_version(body: Mapping[str, Any]) -> None:
    """A decoded payload's ``v``: :data:`VERSION` (a bool is not a version)."""
    v = body.get("v")
    if v != VERSION or isinstance(v, bool):
        raise DecodeError(f"unsupported version v={v!r} (expected {VERSION})")


def _is_num(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _req_str(body: Mapping[str, Any], key: str) -> str:
    x = body.get(key)
    if not isinstance(x, str) or not x:
        raise DecodeError(f"'{key}' must be a non-empty string")
    return x


def _req_num(body: Mapping[str, Any], key: str) -> float:
    x = body.get(key)
    if not _is_num(x) or not math.isfinite(x):
        raise DecodeError(f"'{key}' must be a finite number")
    return float(x)


def _opt_num(body: Mapping[str, Any], key: str) -> float | None:
    x = body.get(key)
    if x is None:
        return None
    if not _is_num(x):
        raise DecodeError(f"'{key}' must be a number or null")
    return float(x)


def _req_seq(body: Mapping[str, Any]) -> int:
    seq = body.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise DecodeError("'seq' must be a non-negative integer")
    return seq


def _device(body: Mapping[str, Any], expected: str | None) -> str:
    device = body.get("device")
    if not isinstance(device, str) or not valid_device(device):
        raise DecodeError(f"'device' must match [A-Za-z0-9][A-Za-z0-9_.-]{{0,63}}: {device!r}")
    if expected is not None and device != expected:
        raise DecodeError(f"payload device {device!r} differs from topic device {expected!r}")
    return device


def decode_birth(payload: bytes, device: str | None = None) -> Birth:
    body = _load_json(payload)
    dev = _device(body, device)
    period = _req_num(body, "sample_period_s")
    if period <= 0:
        raise DecodeError("'sample_period_s' must be positive")
    known = {"v", "device", "sample_period_s", "ts", *_BIRTH_KEYS}
    return Birth(
        dev,
        *(_req_str(body, k) for k in _BIRTH_KEYS),
        sample_period_s=period,
        ts=_req_num(body, "ts"),
        extra={k: x for k, x in body.items() if k not in known},
    )


# What json.loads gives for a number or null (bool is its own type, so it is not in here).
_ROW_TYPES = frozenset((float, int, type(None)))
_LIST_ONLY = frozenset((list,))


def _row(row: object, width: int, ts_at: int, n: int) -> tuple[Value, ...]:
    if not isinstance(row, list) or len(row) != width:
        raise DecodeError(f"row {n} must be a list of {width} values")
    # one C-level pass over the types instead of a Python check per value (the worker's hot path)
    if not _ROW_TYPES.issuperset(map(type, row)):
        for x in row:
            if x is not None and not _is_num(x):
                raise DecodeError(f"row {n}: value {x!r} is not a number or null")
    if row[ts_at] is None:
        raise DecodeError(f"row {n}: 'ts' must not be null")
    return tuple(row)


def telemetry_head(
    body: Mapping[str, Any], device: str | None = None, *, fields_checked: bool = False
) -> tuple[str, int]:
    """A telemetry body's device and seq, after checking them and its ``fields`` (everything
    but the rows, in the order :func:`decode_telemetry` checks them); ``fields_checked``: the
    caller has seen these very fields pass :func:`check_fields` before."""
    dev = _device(body, device)
    seq = _req_seq(body)
    if not fields_checked:
        check_fields(body.get("fields"))
    return dev, seq


def check_fields(fields: object) -> None:
    """A telemetry block's ``fields``: a list of 1..MAX_FIELDS distinct identifiers with ``ts``."""
    if not isinstance(fields, list) or not fields or len(fields) > MAX_FIELDS:
        raise DecodeError(f"'fields' must be a list of 1..{MAX_FIELDS} names")
    for f in fields:
        if not isinstance(f, str) or not _FIELD_RE.match(f):
            raise DecodeError(f"field name {f!r} is not an identifier")
    if len(set(fields)) != len(fields):
        raise DecodeError("'fields' has a repeated name")
    if "ts" not in fields:
        raise DecodeError("'fields' must include 'ts'")


def decode_telemetry(payload: bytes, device: str | None = None) -> Telemetry:
    body = _load_json(payload)
    dev, seq = telemetry_head(body, device)
    fields = body["fields"]
    rows = body.get("rows")
    if not isinstance(rows, list) or len(rows) > MAX_ROWS:
        raise DecodeError(f"'rows' must be a list of at most {MAX_ROWS} rows")
    width, ts_at = len(fields), fields.index("ts")
    # the whole block checked in a few C-level passes (the worker's hot path); only a block
    # that fails them goes row by row, to name the first bad row
    if (
        _LIST_ONLY.issuperset(map(type, rows))
        and _ROW_TYPES.issuperset(map(type, chain.from_iterable(rows)))
        and all(map(width.__eq__, map(len, rows)))
        and None not in map(itemgetter(ts_at), rows)
    ):
        return Telemetry(dev, seq, tuple(fields), tuple(map(tuple, rows)))
    return Telemetry(
        dev, seq, tuple(fields), tuple(_row(r, width, ts_at, n) for n, r in enumerate(rows))
    )


def decode_event(payload: bytes, device: str | None = None) -> Event:
    body = _load_json(payload)
    known = {"v", "device", "seq", "ts", "kind", "value", "limit"}
    return Event(
        _device(body, device),
        _req_seq(body),
        _req_num(body, "ts"),
        _req_str(body, "kind"),
        _opt_num(body, "value"),
        _opt_num(body, "limit"),
        extra={k: x for k, x in body.items() if k not in known},
    )


def decode_status(payload: bytes, device: str) -> Status:
    text = payload.decode("utf-8", errors="replace").strip()
    if text not in STATUS_VALUES:
        raise DecodeError(f"status must be 'online' or 'offline', not {text[:40]!r}")
    return Status(device, text == "online")


def decode(topic_name: str, payload: bytes) -> Message:
    """Decode a message received on ``topic_name``; the payload's device must match the topic's."""
    t = parse_topic(topic_name)
    if t.kind == "status":
        return decode_status(payload, t.device)
    return _DECODERS[t.kind](payload, t.device)


_DECODERS = {"birth": decode_birth, "telemetry": decode_telemetry, "event": decode_event}


def salvage_seq(topic_name: str, payload: bytes) -> tuple[str, int] | None:
    """The (device, seq) a message that failed to decode still names, if both can be trusted:
    a valid telemetry or event topic and a JSON object whose ``seq`` is a non-negative integer
    (and whose ``device``, if any, is the topic's). The receiver uses it to know that this seq
    will never arrive intact, instead of waiting for it.

    >>> salvage_seq("qloop/v1/22/ac-1/telemetry", b'{"v": 1, "seq": 7, "rows": "junk"}')
    ('ac-1', 7)
    >>> salvage_seq("qloop/v1/22/ac-1/telemetry", b'{"seq": 7, "device": "ac-2"}') is None
    True
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        return None
    try:
        t = parse_topic(topic_name)
        body = json.loads(payload, parse_constant=_nonfinite)
        if t.kind not in ("telemetry", "event") or not isinstance(body, dict):
            return None
        if body.get("device", t.device) != t.device:
            return None
        return t.device, _req_seq(body)
    except (DecodeError, ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
