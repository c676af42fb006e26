"""A telemetry payload straight into one float array: the worker's decode of its hot path.

:func:`decode_readings` gives a message's rows as one (rows × fields) float64 array (NaN for
no value) without making a Python float, list or tuple per reading: simdjson parses the payload
(validating it as strict UTF-8 JSON) and copies the rows' numbers into a buffer that numpy
takes as it is. The block's header (``v``, ``device``, ``seq``, ``fields``) is checked by the
contract's own code (:func:`contract.protocol.telemetry_head`).

That path takes only what the contract's reference decoder
(:func:`contract.protocol.decode_telemetry`) accepts with the same values: a JSON object with no
repeated key (simdjson would read the first of two, the reference the last), ``rows`` a list
of at most ``MAX_ROWS`` lists of exactly one number per field, no nested list (the payload's
``[`` are exactly the rows', their list's and ``fields``'), every value a JSON number that fits
64 bits (simdjson and the reference round decimal text to the same double). Everything else —
a ``null`` (a sensor with no value), a non-finite constant, a payload that is not JSON, a wrong
shape, an odd extra key holding a ``[``, rows not written as compactly as the edge writes them
(``"rows":[[``) — goes to the reference decoder, which accepts it or
raises the :class:`~contract.protocol.DecodeError` whose reason becomes the dead letter's. So
strictness and reasons are the contract's by construction, and the fast path only changes
speed (``tests/cloud/ingest/test_decode.py`` compares the two on random and malformed blocks).

Why simdjson (pysimdjson): orjson parses only into Python objects, and numpy's text parsers
read more than JSON (``nan``, leading zeros, a bare ``.5``), so the text would need checking
again; simdjson validates the JSON and converts each number once, into the float buffer.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from math import isfinite, nan

import numpy as np
import simdjson

from cloud.anomaly.base import Block
from contract import protocol
from contract.protocol import MAX_PAYLOAD_BYTES, MAX_ROWS, Telemetry

_local = threading.local()  # a simdjson parser per thread: it reuses its buffers
_fields_seen: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple per distinct field list


@dataclass(frozen=True, slots=True)
class Readings:
    """A decoded telemetry message: its rows as one (rows × fields) float64 array (NaN = null),
    and the payload it came from (for what needs the contract's :class:`Telemetry`)."""

    device: str
    seq: int
    fields: tuple[str, ...]
    values: np.ndarray
    payload: bytes

    def __len__(self) -> int:
        return len(self.values)

    def times(self) -> list[float]:
        """The rows' event times."""
        return self.values[:, self.fields.index("ts")].tolist()

    def span(self) -> tuple[float, float]:
        """The rows' earliest and latest event time, or (NaN, NaN) unless their sum is finite:
        a NaN or an infinity among them makes it NaN or infinite (so does a sum of finite
        times too large for a float, which no clock believes either). Faster than numpy's
        two reductions up to a few dozen rows, and as fast at 60."""
        ts = self.values[:, self.fields.index("ts")].tolist()
        if isfinite(sum(ts)):
            return min(ts), max(ts)
        return nan, nan

    def block(self) -> Block:
        """The detectors' block: ``ts`` and the columns are views of :attr:`values`."""
        return Block.from_array(self.device, self.fields, self.values)

    def telemetry(self) -> Telemetry:
        """The message as the contract's reference decoder gives it (rows of Python values)."""
        return protocol.decode_telemetry(self.payload, self.device)


def decode_readings(payload: bytes, device: str | None = None) -> Readings:
    """Decode a telemetry payload (received for ``device``, if given) into :class:`Readings`;
    :class:`~contract.protocol.DecodeError` for anything the contract refuses."""
    fast = _fast(payload, device) if len(payload) <= MAX_PAYLOAD_BYTES else None
    if fast is not None:
        return fast
    t = protocol.decode_telemetry(payload, device)  # accepts, or raises with the reason
    values = np.array(t.rows, dtype=float).reshape(len(t.rows), len(t.fields))  # None → nan
    return Readings(t.device, t.seq, _shared(t.fields), values, payload)


def _parser() -> simdjson.Parser:
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = simdjson.Parser()
    return parser


def _shared(fields: tuple[str, ...]) -> tuple[str, ...]:
    """One tuple object per distinct field list (blocks of the same fields stack at once); the
    field lists in here passed :func:`contract.protocol.check_fields`."""
    shared = _fields_seen.get(fields)
    if shared is None:
        protocol.check_fields(list(fields))
        if len(_fields_seen) >= 1024:  # bounded whatever devices send
            _fields_seen.clear()
        shared = _fields_seen[fields] = fields
    return shared


def _plain_rows(payload: bytes, n: int, width: int) -> bool:
    """Whether the payload's ``[`` are exactly the rows', their list's and ``fields``' (no
    nested list anywhere) and each of the ``n`` rows in its text holds ``width`` values: the
    rows' text without its numbers and spaces must be ``width - 1`` commas per row between the
    rows' bounds (C-level passes; the numbers themselves are simdjson's to check).
    ``"rows":[[`` can only be the key (a string value is never followed by a colon). The rows'
    text is taken up to the payload's last ``]]`` (the edge writes ``rows`` last, so this finds
    it without reading the rows twice): if that were not the rows' end, the rows' own ``]]``
    would be in the text and it would not match. Its ``[`` are then the ``n - 1`` between rows
    (checked by the match) and the two of ``[[``, so the rest of the payload may hold only
    one, the field list's. Text it cannot read so (the key written with escapes, a space
    inside ``[[`` or ``]]``) says False, and the reference decides."""
    if n == 0:
        return payload.count(b"[") == 2
    at = payload.find(b'"rows":[[')
    end = payload.rfind(b"]]")
    if at < 0 or end < at + 9 or payload.count(b"[", 0, at) + payload.count(b"[", end) != 1:
        return False
    return payload[at + 9 : end].translate(None, _NUMBERS) == _row_bounds(n, width)


_NUMBERS = b"0123456789.eE+- \t\r\n"  # what a row's numbers and JSON's spaces are made of


@functools.lru_cache(maxsize=256)
def _row_bounds(n: int, width: int) -> bytes:
    """What ``n`` rows of ``width`` numbers leave of their text once the numbers are gone."""
    one = b"," * (width - 1)
    return b"],[".join([one] * n)


def _fast(payload: bytes, device: str | None) -> Readings | None:
    """The readings when the payload is in the shape described above, else None."""
    try:
        doc = _parser().parse(payload)
        if not isinstance(doc, simdjson.Object):
            return None
        keys = list(doc.keys())
        fields, rows = doc.get("fields"), doc.get("rows")
        if (
            len(set(keys)) != len(keys)
            or not isinstance(fields, simdjson.Array)
            or not isinstance(rows, simdjson.Array)
        ):
            return None
        names = tuple(fields.as_list())
        head = {"v": doc.get("v"), "device": doc.get("device"), "seq": doc.get("seq")}
        n, width = len(rows), len(names)
        # copies the numbers; TypeError on anything but numbers (null, true, a string...)
        flat = np.frombuffer(rows.as_buffer(of_type="d"), dtype=np.float64)
        del doc, fields, rows  # the parser may be reused only once its proxies are gone
    except (ValueError, TypeError, RuntimeError, KeyError, IndexError):
        return None  # not JSON simdjson takes, or not all numbers: the reference decides
    if n > MAX_ROWS or flat.size != n * width or not _plain_rows(payload, n, width):
        return None
    try:
        protocol.check_version(head)
        dev, seq = protocol.telemetry_head(head, device, fields_checked=True)
        shared = _shared(names)
    except protocol.DecodeError:
        return None  # the reference names what is wrong
    return Readings(dev, seq, shared, flat.reshape(n, width), payload)
