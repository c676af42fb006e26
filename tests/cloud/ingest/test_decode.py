"""The worker's telemetry decode (cloud/ingest/decode.py) against the contract's reference
decoder: the same values, the same refusals with the same reasons."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.anomaly.base import Block
from cloud.anomaly.columns import Batch
from cloud.ingest import decode
from cloud.ingest.decode import decode_readings
from cloud.store.journal import Journal
from contract import protocol
from contract.protocol import DecodeError, Telemetry


def _reference(payload: bytes, device: str | None = "d1") -> object:
    """What the contract's decoder makes of it: (device, seq, fields, array) or the reason."""
    try:
        t = protocol.decode_telemetry(payload, device)
    except DecodeError as e:
        return e.reason
    values = np.array(t.rows, dtype=float).reshape(len(t.rows), len(t.fields))
    return t.device, t.seq, t.fields, values


def _ours(payload: bytes, device: str | None = "d1") -> object:
    try:
        r = decode_readings(payload, device)
    except DecodeError as e:
        return e.reason
    return r.device, r.seq, r.fields, r.values


def _same(a: object, b: object) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    (*head_a, va), (*head_b, vb) = a, b
    # bit for bit, NaN included (array_equal with equal_nan would also let -0.0 == 0.0 pass)
    return head_a == head_b and va.shape == vb.shape and va.tobytes() == vb.tobytes()


def _fast_path_taken(payload: bytes, device: str | None = "d1") -> bool:
    return decode._fast(payload, device) is not None


value = (
    st.none()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
)


@given(
    st.integers(0, 2**63),
    st.lists(st.sampled_from(["x", "y", "z_1", "w"]), unique=True, max_size=3),
    st.data(),
)
def test_random_blocks_decode_to_the_reference_values(seq, extra, data):
    fields = ["ts", *extra]
    rows = data.draw(
        st.lists(
            st.tuples(st.floats(1e9, 2e9) | st.integers(0, 2**40), *[value for _ in extra]).map(
                list
            ),
            max_size=30,
        )
    )
    body = {"v": 1, "device": "d1", "seq": seq, "fields": fields, "rows": rows}
    spaced = json.dumps(body).encode()
    assert _same(_ours(spaced), _reference(spaced))
    payload = json.dumps(body, separators=(",", ":")).encode()  # compact, as the edge writes
    assert _same(_ours(payload), _reference(payload))
    if not any(x is None or (isinstance(x, int) and abs(x) >= 2**63) for r in rows for x in r):
        assert _fast_path_taken(payload)  # numbers only: no Python list of floats made


def _tel(raw_rows: str = "[[1.0,2.0]]", **over: object) -> bytes:
    body = {"v": 1, "device": "d1", "seq": 1, "fields": ["ts", "x"], "rows": "ROWS"}
    body.update(over)
    text = json.dumps(body, separators=(",", ":")).encode()
    return text.replace(b'"ROWS"', raw_rows.encode())


MALFORMED = [
    b"not json",
    b"\xff\xfe",
    b"[1, 2]",
    _tel(v=2),
    _tel(v=True),
    _tel(seq=-1),
    _tel(seq="7"),
    _tel(device="bad device"),
    _tel(device="d2"),
    _tel(fields="ts,x"),
    _tel(fields=["x", "y"]),
    _tel(fields=["ts", "ts"]),
    _tel("[[1.0]]"),
    _tel('[[1.0,"hot"]]'),
    _tel("[[null,1.0]]"),
    _tel("[[1.0,true]]"),
    _tel('{"a":1}'),
    _tel("[[1.0,2.0],[2.0,3.0],[3.0]]"),
    _tel("[[1.0,2.0,3.0],[4.0]]"),  # as many numbers as a 2 × 2 block, rows of 3 and 1
    _tel("[[1.0,2.0,3.0],[4.0]]").replace(b'"rows"', b'"r\\u006fws"'),  # a key with escapes
    _tel("[[1.0,2.0,3.0],[4.0]]", note="rows"),
    _tel("[[1.0,2.0,3.0] , [4.0]]"),
    _tel("[ [1.0,2.0], [3.0,4.0] ]"),  # spaces: the reference reads them
    _tel("[[1.0,2.0],[],[3.0,4.0]]"),
    _tel("[[1.0,2.0],[3.0,4.0]]", fields=["ts", "x", "y"]),
    _tel("[[1.0,[2.0]],[3.0,4.0]]"),  # a nested list of one number: as many leaves too
    _tel("[[1.0,[]],[3.0,[4.0,5.0]]]"),
    _tel("[1.0,2.0]"),
    _tel("[[1.0,{}]]"),
    _tel("[[01,2.0]]"),  # not JSON
    _tel("[[1.0,2.0],]"),
    _tel("[[1e400,2.0]]"),  # infinite: the standard parser reads it, the clock check refuses it
    _tel("[[NaN,2.0]]"),
    _tel("[[1.0,NaN]]"),
    b'{"v":1,"device":"d1","seq":1,"fields":["ts","x"],"rows":[[1.0,2.0]],"rows":"junk"}',
    b'{"v":1,"v":2,"device":"d1","seq":1,"fields":["ts","x"],"rows":[[1.0,2.0]]}',
    _tel(note="a [bracket] in a string"),
    _tel(note="x]]"),  # a "]]" after the rows: the rows' text is not up to the last one
    _tel("[[1.0,2.0],[3.0,4.0]]", note="]]"),
    b'{"v":1,"device":"d1","seq":1,"fields":["ts","x"],"a\\"rows":[[9.0,9.0]],"rows":[[1.0,2.0]]}',
    b'{"v":1,"device":"d1","seq":1,"rows":[[1.0,2.0],[3.0,4.0]],"fields":["ts","x"]}',
    b'{"v":1,"device":"d1","seq":1,"rows":[[1.0,2.0],[3.0,4.0]],"fields":["ts","x"],"n":[1]}',
    _tel("[[1.0,123456789012345678901234567890]]"),
    _tel("[[1.0,-0]]"),
    _tel("[[1.0,-0.0]]"),
    b"\xef\xbb\xbf" + _tel(),
    _tel("[" + ",".join(["[1.0,2.0]"] * (protocol.MAX_ROWS + 1)) + "]"),
    b" " * (protocol.MAX_PAYLOAD_BYTES + 1),
]


@pytest.mark.parametrize("payload", MALFORMED, ids=range(len(MALFORMED)))
def test_odd_and_malformed_payloads_get_the_reference_outcome(payload):
    """Refused with the reference's reason, or accepted with its values."""
    assert _same(_ours(payload), _reference(payload))


def test_the_fast_path_leaves_nothing_it_cannot_vouch_for():
    assert _fast_path_taken(_tel("[[1.0,2],[3,4.5]]"))
    assert _fast_path_taken(_tel("[]"))
    assert _fast_path_taken(_tel("[[1.0,2.0]]", note="rows"))  # "rows" as a value: still read
    rows_first = b'{"v":1,"device":"d1","seq":1,"rows":[[1.0,2.0]],"fields":["ts","x"]}'
    assert _fast_path_taken(rows_first)  # the field list's "[" after the rows is counted too
    for payload in (
        _tel("[[1.0,null]]"),
        _tel(note="[x]"),
        _tel("[[1.0,[2.0]],[3.0,4.0]]"),
        _tel(note="x]]"),
        rows_first.replace(b"}", b',"n":[1]}'),
    ):
        assert not _fast_path_taken(payload)
    # nor does a failed parse leave the thread's parser unusable
    assert _fast_path_taken(_tel("[[5.0,6.0]]"))


def test_readings_give_the_block_and_the_reference_message():
    payload = _tel("[[1.0,2.0],[3.0,null]]")
    r = decode_readings(payload, "d1")
    assert r.times() == [1.0, 3.0] and len(r) == 2
    b = r.block()
    assert b.values is r.values and b.ts.tolist() == [1.0, 3.0]
    assert b.columns["x"][0] == 2.0 and math.isnan(b.columns["x"][1])
    assert r.telemetry() == Telemetry("d1", 1, ("ts", "x"), ((1.0, 2.0), (3.0, None)))
    # one field tuple for every block of the same fields: a batch of them stacks at once
    assert decode_readings(_tel(seq=2), "d1").fields is r.fields


def test_a_batch_of_array_blocks_stacks_as_the_general_path_does():
    rng = np.random.default_rng(7)
    fields = ("a", "ts", "b")
    blocks = [Block.from_array(f"d{i}", fields, rng.normal(size=(5, 3))) for i in range(4)]
    plain = [Block(b.device, b.ts, dict(b.columns)) for b in blocks]  # no array: general path
    fast, general = Batch.of(blocks), Batch.of(plain)
    assert fast.ts.tobytes() == general.ts.tobytes()
    assert fast.lengths.tolist() == general.lengths.tolist()
    assert list(fast.cols) == list(general.cols) == ["a", "b"]
    for name in general.cols:
        assert fast.cols[name].flags.c_contiguous
        assert fast.cols[name].tobytes() == general.cols[name].tobytes()
        assert fast.has[name].tolist() == general.has[name].tolist()
    # blocks of different lengths or fields go the general way
    short = Block.from_array("d9", fields, rng.normal(size=(3, 3)))
    mixed = Batch.of([*blocks, short])
    assert mixed.lengths.tolist() == [5, 5, 5, 5, 3] and math.isnan(mixed.ts[4, 4])


def test_waiting_blocks_pickle_as_their_array_and_old_checkpoints_still_load():
    b = Block.from_rows("d1", ("ts", "x"), [(1.0, 2.0), (2.0, None)])
    back = pickle.loads(pickle.dumps(b))
    assert back.fields == ("ts", "x") and back.ts.tolist() == [1.0, 2.0]
    assert np.shares_memory(back.ts, back.values)
    old = Block("d1", np.array([1.0]), {"x": np.array([3.0])})
    back = pickle.loads(pickle.dumps(old))
    assert back.values is None and back.columns["x"].tolist() == [3.0]
    # the state a checkpoint written before ``values`` holds: three fields
    restored = Block.__new__(Block)
    restored.__setstate__(["d1", np.array([1.0]), {"x": np.array([3.0])}])
    assert restored.values is None and restored.fields == () and len(restored) == 1


def test_journal_stores_a_batch_with_one_statement_and_says_which_were_new(tmp_path):
    journal = Journal(tmp_path / "j.db")
    row = lambda seq: ("d1", seq, "telemetry", 0.0, 1.0, 5.0, b"{}")  # noqa: E731
    assert journal.add_messages([row(0), row(1)]) == [True, True]
    journal.commit()
    # a copy stored before (a redelivery after a restart) among new ones: each told apart
    assert journal.add_messages([row(2), row(1), row(3), row(3)]) == [True, False, True, False]
    assert journal.add_messages([]) == []
    journal.commit()
    assert journal.seqs("d1") == [0, 1, 2, 3] and journal.count("messages") == 4
    journal.close()
