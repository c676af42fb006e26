"""The device contract codec: round trips and clear errors (CONTRACTS.md §1)."""

from __future__ import annotations

import contextlib
import json
import math
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract import protocol
from contract.protocol import Birth, DecodeError, Event, Status, Telemetry

devices = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
names = st.from_regex(r"\A[a-z_][a-z0-9_]{0,20}\Z")
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
text = st.text(min_size=1, max_size=20)


@given(devices)
def test_partition_is_crc32_mod_64(device):
    assert protocol.partition(device) == zlib.crc32(device.encode()) % 64
    t = protocol.topic(device, "telemetry")
    assert t == f"qloop/v1/{protocol.partition(device):02d}/{device}/telemetry"
    parsed = protocol.parse_topic(t)
    assert (parsed.device, parsed.kind, parsed.partition) == (
        device,
        "telemetry",
        protocol.partition(device),
    )


@pytest.mark.parametrize(
    "bad",
    [
        "qloop/v1/00/ac-1/telemetry/x",
        "qloop/v2/00/ac-1/telemetry",
        "qloop/v1/0/ac-1/birth",
        "qloop/v1/00/-bad/birth",
        "qloop/v1/00/ac-1/reboot",
        "qloop/v1/63/ac-000123/birth",
    ],
)
def test_bad_topics(bad):
    with pytest.raises(DecodeError):
        protocol.parse_topic(bad)


def _outcome(parse, name):
    try:
        return parse(name)
    except Exception as e:  # noqa: BLE001 - the kind and text of any refusal must match too
        return type(e), str(e)


def _near_topic(device: str, pp: str, kind: str, tail: str) -> str:
    return f"qloop/v1/{pp}/{device}/{kind}{tail}"


@given(
    st.one_of(devices, st.text(max_size=70), st.just("a" * 64), st.just("a" * 65)),
    st.one_of(
        st.integers(0, 99).map("{:02d}".format),
        st.sampled_from(["\u0660\u0661", "0\u00b2", " 1", "1", "001", ""]),
    ),
    st.sampled_from([*protocol.KINDS, "reboot", "Birth", ""]),
    st.sampled_from(["", "\n", "/", "/x"]),
)
def test_parse_topic_fast_match_gives_what_the_checks_give(device, pp, kind, tail):
    """The pattern taken first accepts exactly what the checks one by one accept, with the
    same value; everything else gets the checks' own error."""
    own = f"{zlib.crc32(device.encode('utf-8', 'surrogatepass')) % 64:02d}"
    for name in (_near_topic(device, pp, kind, tail), _near_topic(device, own, kind, tail)):
        assert _outcome(protocol.parse_topic, name) == _outcome(protocol._parse_topic_checked, name)


def test_subscriptions_and_partition_specs():
    assert protocol.parse_partitions("0-2,5") == [0, 1, 2, 5]
    assert protocol.subscriptions([0, 15]) == ["qloop/v1/00/+/#", "qloop/v1/15/+/#"]
    for bad in ("64", "3-1", "x", ""):
        with pytest.raises(ValueError):
            protocol.parse_partitions(bad)


@given(
    devices, st.integers(0, 2**53), st.lists(names, min_size=1, max_size=8, unique=True), st.data()
)
def test_telemetry_round_trip(device, seq, extra_fields, data):
    fields = ("ts", *[f for f in extra_fields if f != "ts"])
    n = data.draw(st.integers(0, 20))
    rows = tuple(
        (data.draw(finite), *[data.draw(st.none() | finite) for _ in fields[1:]]) for _ in range(n)
    )
    msg = Telemetry(device, seq, fields, rows)
    assert protocol.decode(protocol.topic(device, "telemetry"), protocol.encode(msg)) == msg


@given(devices, text, text, text, text, text, st.floats(0.01, 1e5), finite)
def test_birth_round_trip(device, product, model, batch, serial, firmware, period, ts):
    msg = Birth(
        device, product, model, batch, serial, firmware, period, ts, {"dropped_readings": 3}
    )
    assert protocol.decode(protocol.topic(device, "birth"), protocol.encode(msg)) == msg


@given(devices, st.integers(0, 2**40), finite, text, st.none() | finite, st.none() | finite)
def test_event_round_trip(device, seq, ts, kind, value, limit):
    msg = Event(device, seq, ts, kind, value, limit)
    assert protocol.decode(protocol.topic(device, "event"), protocol.encode(msg)) == msg


def test_status_round_trip():
    for online in (True, False):
        m = Status("ac-1", online)
        assert protocol.decode(protocol.topic("ac-1", "status"), protocol.encode(m)) == m
    with pytest.raises(DecodeError, match="online"):
        protocol.decode(protocol.topic("ac-1", "status"), b"maybe")


def test_contract_example_decodes():
    body = {
        "v": 1,
        "device": "ac-000123",
        "seq": 4711,
        "fields": [
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
        ],
        "rows": [
            [1716000000.0, 16.0, 25.1, 16.2, 31.0, 1, 2, 4.2, 41.3, 0.03],
            [1716000010.0, 16.0, 25.0, 16.1, 31.0, 1, 2, 4.2, 41.2, 0.03],
        ],
    }
    t = protocol.decode(protocol.topic("ac-000123", "telemetry"), json.dumps(body).encode())
    assert t.seq == 4711 and t.column("supply_c") == [16.2, 16.1]


def test_non_finite_values_become_null():
    raw = (
        b'{"v":1,"device":"d1","seq":1,"fields":["ts","x","y"],'
        b'"rows":[[1.0,NaN,Infinity],[2.0,-Infinity,3]]}'
    )
    t = protocol.decode_telemetry(raw)
    assert t.rows == ((1.0, None, None), (2.0, None, 3))
    assert protocol.encode(Telemetry("d1", 1, ("ts", "x"), ((1.0, math.nan),))).count(b"null")


def _tel(**over):
    body = {"v": 1, "device": "d1", "seq": 1, "fields": ["ts", "x"], "rows": [[1.0, 2.0]]}
    body.update(over)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"not json", "not UTF-8 JSON"),
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"[1, 2]", "JSON object"),
        (_tel(v=2), "unsupported version"),
        (_tel(v=True), "unsupported version"),
        (_tel(seq=-1), "seq"),
        (_tel(seq="7"), "seq"),
        (_tel(seq=True), "seq"),
        (_tel(device="bad device"), "device"),
        (_tel(device="d2"), "differs from topic"),
        (_tel(fields="ts,x"), "fields"),
        (_tel(fields=["x", "y"]), "must include 'ts'"),
        (_tel(fields=["ts", "ts"]), "repeated"),
        (_tel(fields=["ts", "bad name"]), "identifier"),
        (_tel(rows=[[1.0]]), "row 0 must be a list of 2"),
        (_tel(rows=[[1.0, "hot"]]), "not a number"),
        (_tel(rows=[[None, 1.0]]), "'ts' must not be null"),
        (_tel(rows={"a": 1}), "rows"),
        # the whole block is checked at once; a bad one is then named row by row
        (_tel(rows=[[1.0, 2.0], [2.0, 3.0], [3.0]]), "row 2 must be a list of 2"),
        (_tel(rows=[[1.0, 2.0], [2.0, True]]), r"row 1: value True is not a number"),
        (_tel(rows=[[1.0, 2.0], "3,4"]), "row 1 must be a list of 2"),
        (_tel(rows=[[1.0, 2.0], [None, 4.0]]), "row 1: 'ts' must not be null"),
        (_tel(rows=[[1.0, [2.0]]]), "row 0: value"),
    ],
)
def test_malformed_telemetry_is_refused_with_a_reason(payload, reason):
    with pytest.raises(DecodeError, match=reason):
        protocol.decode(protocol.topic("d1", "telemetry"), payload)


def test_missing_fields_and_oversize():
    with pytest.raises(DecodeError, match="'seq'"):
        protocol.decode_telemetry(json.dumps({"v": 1, "device": "d1"}).encode())
    with pytest.raises(DecodeError, match="'model'"):
        protocol.decode_birth(
            json.dumps(
                {"v": 1, "device": "d1", "product": "p", "sample_period_s": 1, "ts": 1}
            ).encode()
        )
    with pytest.raises(DecodeError, match="exceeds"):
        protocol.decode_telemetry(b" " * (protocol.MAX_PAYLOAD_BYTES + 1))
    with pytest.raises(DecodeError, match="'ts'"):
        protocol.decode_event(json.dumps({"v": 1, "device": "d1", "seq": 1, "kind": "k"}).encode())


@given(st.binary(max_size=300))
def test_decoder_never_raises_anything_but_decode_error(blob):
    for kind in ("birth", "telemetry", "event", "status"):
        with contextlib.suppress(DecodeError):
            protocol.decode(protocol.topic("d1", kind), blob)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


def _standard(payload: bytes) -> object:
    try:
        return json.loads(payload, parse_constant=lambda _: None)
    except ValueError:
        return DecodeError


def _fast(payload: bytes) -> object:
    try:
        return protocol._load_json(payload)
    except DecodeError:
        return DecodeError


@given(st.dictionaries(st.text(max_size=4), json_values, max_size=5), st.booleans())
def test_the_fast_json_path_reads_what_the_standard_parser_reads(body, nonstandard):
    """Payloads are parsed with orjson and, where it refuses, the standard parser: the outcome
    is the standard parser's (huge integers, NaN and Infinity included), except that orjson
    reads an integer beyond 64 bits (below -2**63 or from 2**64) as the nearest float: the
    same number to a reading, and a seq or a time that is no integer is refused either way."""
    body = {**body, "v": protocol.VERSION}
    payload = json.dumps(body, allow_nan=True).encode()
    if nonstandard:  # what lenient encoders emit for non-finite floats
        payload = payload.replace(b"}", b', "x": NaN, "y": -Infinity}', 1)
    assert _as_floats_beyond_64_bits(_fast(payload)) == _as_floats_beyond_64_bits(
        _standard(payload)
    )


def _as_floats_beyond_64_bits(value: object) -> object:
    if isinstance(value, dict):
        return {k: _as_floats_beyond_64_bits(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_floats_beyond_64_bits(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return float(value)
    return value


@given(st.binary(max_size=200))
def test_the_fast_json_path_refuses_what_the_standard_parser_refuses(blob):
    want = _standard(blob)
    if isinstance(want, dict) and want.get("v") == protocol.VERSION:
        assert _fast(blob) == want
    else:
        assert _fast(blob) is DecodeError
