"""The fleet-wide (columnar) detectors against the per-device reference classes.

Random streams of many devices (seeded numpy: cycles, drifts beyond the learned range, steps,
NaNs, missing columns, outages, blocks of 1 to 90 rows) go through the reference objects one
block at a time and through :mod:`cloud.anomaly.columns` one round of devices at a time: the
findings must be the same (kind, time, onset, state exactly; figures to rounding), and so must the
state each device exports at the end.
"""

from __future__ import annotations

import functools
import math
import pickle
from collections.abc import Callable

import numpy as np
import pytest

from cloud.anomaly.bank import DetectorBank, _DeviceState
from cloud.anomaly.base import Block, Finding
from cloud.anomaly.columns import Batch, ObjectColumns, ShiftColumns, StuckColumns, columns_for
from cloud.anomaly.cooling import CoolingDecline
from cloud.anomaly.level import NoiseRise, VibrationRise
from cloud.anomaly.prior import FeaturePrior
from cloud.anomaly.stuck import SensorStuck
from cloud.anomaly.univariate import UnivariateAnomaly

H = 3600.0
FAST = {"learn_s": 8 * H, "window_s": H, "min_learn_windows": 4, "trend_windows": 6}

KINDS: list[tuple[str, Callable]] = [
    ("cooling", CoolingDecline),
    ("noise", NoiseRise),
    ("vibration", VibrationRise),
    ("cooling-fast", functools.partial(CoolingDecline, **FAST)),
    ("noise-fast", functools.partial(NoiseRise, **FAST)),
    ("vibration-fast", functools.partial(VibrationRise, **FAST, extend_margin=0.0)),
    ("stuck", SensorStuck),
    ("stuck-fast", functools.partial(SensorStuck, learn_rows=200, min_stuck_s=H)),
    ("univariate", functools.partial(UnivariateAnomaly, warmup=20, window=100)),
]
FIELDS = (
    "compressor_on",
    "return_c",
    "supply_c",
    "ambient_c",
    "fan_speed",
    "noise_db",
    "vibration_g",
)


def _stream(rng: np.random.Generator, device: str, hours: float) -> list[Block]:
    """One unit's blocks: daily cycles, a season's drift, a fault step, NaNs, gaps, odd blocks."""
    period = float(rng.choice([10.0, 30.0, 60.0]))
    ts = np.arange(0.0, hours * H, period) + 1.7e9 + rng.uniform(0, H)
    # outages: drop stretches of readings
    keep = np.ones(len(ts), dtype=bool)
    for _ in range(rng.integers(0, 4)):
        a = rng.integers(0, len(ts))
        keep[a : a + rng.integers(10, 600)] = False
    ts = ts[keep]
    n, day = len(ts), 2 * math.pi * (ts - ts[0]) / 86400.0
    drift = np.clip((ts - ts[0]) / (hours * H), 0, 1) * rng.uniform(0, 15)  # out of range later
    onset, repair = np.sort(rng.uniform(0.3, 1.3, 2)) * hours * H  # some are repaired
    step = ((ts - ts[0] > onset) & (ts - ts[0] < repair)) * rng.uniform(0, 1)
    ambient = 28 + 5 * np.sin(day) + drift + rng.normal(0, 0.3, n)
    fan = rng.integers(1, 4, n).astype(float)
    fan = np.repeat(fan[:: max(1, n // 50)], max(1, n // 50))[:n]
    fan = np.concatenate([fan, np.full(n - len(fan), 2.0)])
    comp = ((np.sin(ts / 900.0) + rng.normal(0, 0.2, n)) > -0.3).astype(float)
    ret = 25 + 0.2 * (ambient - 28) + rng.normal(0, 0.2, n)
    dt = (8 - 0.05 * (ambient - 28) + 0.3 * fan) * (1 - 0.4 * step) + rng.normal(0, 0.2, n)
    cols = {
        "compressor_on": comp,
        "return_c": ret,
        "supply_c": ret - dt,
        "ambient_c": ambient,
        "fan_speed": fan,
        "noise_db": 40 + 2 * fan + 6 * step + rng.normal(0, 0.5, n),
        "vibration_g": (0.1 + 0.02 * fan) * (1 + step) + rng.normal(0, 0.005, n),
    }
    if rng.random() < 0.5:  # a frozen sensor for a while
        a = rng.integers(0, n)
        cols["return_c"][a : a + rng.integers(100, 2000)] = cols["return_c"][a]
    off = np.random.default_rng(int(ts[0])).integers(0, n, 2)  # own draws: the rest as before
    if off[0] % 2:  # switched off by its user for a while: fan and compressor stopped, the
        a, b = off[0], off[0] + 300 + off[1] % 3000  # vibration sensor at its floor
        cols["fan_speed"][a:b], cols["compressor_on"][a:b], cols["vibration_g"][a:b] = 0, 0, 0
    for v in cols.values():
        v[rng.random(n) < 0.02] = np.nan
    blocks, i = [], 0
    while i < n:
        size = int(rng.choice([1, 5, 12, 60, 60, 60, 90]))
        names = [f for f in FIELDS if rng.random() > 0.03]
        blocks.append(Block(device, ts[i : i + size], {f: cols[f][i : i + size] for f in names}))
        i += size
    return blocks


def _key(f: Finding) -> tuple:
    return (f.device, f.fault, f.ts, f.onset_ts, f.active, sorted(f.evidence))


def _same(a: list[Finding], b: list[Finding]) -> None:
    assert [_key(f) for f in a] == [_key(f) for f in b]
    for fa, fb in zip(a, b, strict=True):
        assert fa.score == pytest.approx(fb.score, rel=1e-9, abs=1e-12)
        for k, v in fa.evidence.items():
            assert v == pytest.approx(fb.evidence[k], rel=1e-7, abs=1e-9, nan_ok=True), k


def _state(det: object) -> tuple[list[float], list[object]]:
    """A detector's state, flattened: its numbers (arrays as lists) and everything else."""
    out: list[float] = []
    other: list[object] = []

    def walk(v: object) -> None:
        if hasattr(v, "__getstate__") and type(v).__module__.startswith("cloud."):
            walk(v.__getstate__())
        elif isinstance(v, tuple | list):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for k in sorted(v):
                walk(k)
                walk(v[k])
        elif isinstance(v, np.ndarray):
            out.extend(v.astype(float).ravel().tolist())
        elif isinstance(v, bool | int | float):
            out.append(float(v))
        else:
            other.append(v)

    walk(det)
    return out, other


def _same_state(a: object, b: object) -> None:
    (na, oa), (nb, ob) = _state(a), _state(b)
    assert oa == ob
    # rel 1e-6: the trend test's window levels are float32 (a rounding apart in float64 can be
    # one float32 step apart)
    assert na == pytest.approx(nb, rel=1e-6, abs=1e-9, nan_ok=True)


# three seeds each; one for the generic detector, whose columns are its own objects (the
# comparison checks the plumbing there, not arithmetic) and which costs most to run
CASES = [
    pytest.param(name, make, seed, id=f"{name}-{seed}")
    for name, make in KINDS
    for seed in ([1] if name == "univariate" else [1, 2, 3])
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "make", "seed"), CASES)
def test_columns_find_what_the_reference_finds(name: str, make: Callable, seed: int) -> None:
    rng = np.random.default_rng(seed)
    streams = {f"ac-{k}": _stream(rng, f"ac-{k}", 72.0) for k in range(12)}
    reference = {d: make() for d in streams}
    columns = columns_for(make)
    rows = {d: columns.add() for d in streams}
    # the references share a fleet prior as the columns' rows do, committed once a round
    prior = None
    if isinstance(columns, ShiftColumns):
        prior = FeaturePrior(columns.proto.n_features, extra=columns.proto.prior_slots)
    expected: list[Finding] = []
    got: list[Finding] = []
    for k in range(max(map(len, streams.values()))):
        live = [d for d, bs in streams.items() if k < len(bs)]
        blocks = [streams[d][k] for d in live]
        for d, b in zip(live, blocks, strict=True):
            det = reference[d]
            expected.extend(det.update(b) if prior is None else det.update_pooled(b, prior))
        if prior is not None:
            prior.commit()
        for found in columns.update_many([rows[d] for d in live], Batch.of(blocks)):
            got.extend(found)
    _same(got, expected)
    for d, det in reference.items():
        _same_state(columns.export(rows[d]), det)
    assert expected, "the streams should give findings to compare"


def test_shift_detectors_take_the_column_path() -> None:
    assert isinstance(columns_for(CoolingDecline), ShiftColumns)
    assert isinstance(columns_for(NoiseRise), ShiftColumns)
    assert isinstance(columns_for(SensorStuck), StuckColumns)
    assert isinstance(columns_for(UnivariateAnomaly), ObjectColumns)


def test_a_row_round_trips_through_the_reference_object() -> None:
    rng = np.random.default_rng(7)
    det = CoolingDecline(**FAST)
    for b in _stream(rng, "ac-1", 30.0):
        det.update(b)
    columns = ShiftColumns(functools.partial(CoolingDecline, **FAST))
    row = columns.add()
    columns.load(row, pickle.loads(pickle.dumps(det)))
    _same_state(columns.export(row), det)
    with pytest.raises(ValueError, match="NoiseRise"):
        columns.load(row, NoiseRise())  # type: ignore[arg-type]


def test_bank_fed_in_batches_finds_what_it_finds_block_by_block() -> None:
    """The bank's :meth:`~DetectorBank.flush` over many devices and several blocks each gives
    each device's findings in order, as feeding one block at a time does."""
    rng = np.random.default_rng(11)
    streams = {f"ac-{k}": _stream(rng, f"ac-{k}", 60.0) for k in range(8)}
    one, many = DetectorBank(), DetectorBank()
    expected: dict[str, list[Finding]] = {d: [] for d in streams}
    got: dict[str, list[Finding]] = {d: [] for d in streams}
    for d, blocks in streams.items():
        for seq, b in enumerate(blocks):
            expected[d].extend(one.update("air_conditioner", b, seq))
    step = 7  # seven blocks of every device per flush
    for k in range(0, max(map(len, streams.values())), step):
        for blocks in streams.values():
            for seq in range(k, min(k + step, len(blocks))):
                many.feed("air_conditioner", blocks[seq], seq)
        for f in many.flush():
            got[f.device].append(f)
    for d in streams:
        _same(got[d], expected[d])
        assert many.last_ts(d) == one.last_ts(d)
    assert sum(map(len, expected.values())), "the streams should give findings to compare"


def test_checkpoints_restore_in_both_formats() -> None:
    """A checkpoint is the device's rows of the columns; one of the per-device detector objects
    (the format before the columns) restores too. Either way the restored bank judges on as the
    one that wrote it."""
    rng = np.random.default_rng(1)  # a unit whose faults are found after the checkpoint
    blocks = list(enumerate(_stream(rng, "ac-1", 96.0)))
    half = len(blocks) * 2 // 3
    a = DetectorBank()
    for seq, b in blocks[:half]:
        a.update("air_conditioner", b, seq)
    rows = a.snapshot("ac-1")
    assert rows is not None
    objects = pickle.dumps(_DeviceState(a.detectors("ac-1"), a.last_ts("ac-1"), next_seq=half))
    assert len(rows) < len(objects)
    restored = []
    for state in (rows, objects):
        bank = DetectorBank()
        bank.restore("ac-0", DetectorBank().snapshot("ac-0") or state)  # another device first
        bank.restore("ac-1", state)
        restored.append(bank)
    expected = [f for seq, blk in blocks[half:] for f in a.update("air_conditioner", blk, seq)]
    assert expected, "the stream should give findings after the checkpoint"
    for bank in restored:
        _same([f for seq, blk in blocks[half:] for f in bank.update("air_conditioner", blk, seq)],
              expected)  # fmt: skip


def test_a_checkpoint_in_another_format_or_shape_is_refused_by_name() -> None:
    bank = DetectorBank()
    bank.update("air_conditioner", _stream(np.random.default_rng(3), "ac-1", 2.0)[0], 0)
    saved = pickle.loads(bank.snapshot("ac-1") or b"")
    saved.format = "qloop-detector-rows-0"
    with pytest.raises(ValueError, match="ac-1.*qloop-detector-rows-0"):
        DetectorBank().restore("ac-1", pickle.dumps(saved))
    other = DetectorBank(
        {
            "air_conditioner": (
                functools.partial(CoolingDecline, trend_windows=4),
                NoiseRise,
                VibrationRise,
                SensorStuck,
            )
        }
    )
    other.update("air_conditioner", Block("ac-2", np.arange(3.0), {"return_c": np.ones(3)}))
    with pytest.raises(ValueError, match="ac-2.*another shape"):
        bank.restore("ac-2", other.snapshot("ac-2") or b"")


def test_a_checkpoint_of_other_detectors_is_refused_by_name() -> None:
    """A checkpoint holding a detector the product no longer has is refused."""
    fewer = DetectorBank({"air_conditioner": (CoolingDecline, NoiseRise)}, generic=False)
    full = DetectorBank()
    full.update("air_conditioner", Block("ac-1", np.arange(3.0), {"return_c": np.ones(3)}))
    state = full.snapshot("ac-1")
    assert state is not None
    with pytest.raises(ValueError, match="ac-1.*CoolingDecline, NoiseRise, VibrationRise"):
        fewer.restore("ac-1", state)
    assert "ac-1" not in fewer


def test_a_product_with_two_detectors_of_one_kind_restores_them_in_order() -> None:
    """Two detectors of one class (a product's own settings of each): the checkpoint of the same
    detectors restores each to its own column, in order."""
    makers = {"air_conditioner": (NoiseRise, functools.partial(NoiseRise, min_rise_db=5.0))}
    bank = DetectorBank(makers, generic=False)
    for seq, b in enumerate(_stream(np.random.default_rng(6), "ac-1", 48.0)):
        bank.update("air_conditioner", b, seq)
    restored = DetectorBank(makers, generic=False)
    restored.restore("ac-1", bank.snapshot("ac-1") or b"")
    got = [pickle.dumps(d) for d in restored.detectors("ac-1")]
    assert got == [pickle.dumps(d) for d in bank.detectors("ac-1")]
    assert [d.min_rise_db for d in restored.detectors("ac-1")] == [2.0, 5.0]


def test_a_checkpoint_from_before_a_detector_was_added_restores_what_it_holds() -> None:
    """An upgrade that adds a detector: the unit's learned baseline comes back, the added
    detector starts learning, and the restored bank judges on as the old one did."""
    blocks = list(enumerate(_stream(np.random.default_rng(5), "ac-1", 60.0)))
    before = DetectorBank({"air_conditioner": (CoolingDecline,)}, generic=False)
    for seq, b in blocks:
        before.update("air_conditioner", b, seq)
    state = before.snapshot("ac-1")
    assert state is not None and not before.detectors("ac-1")[0].learning
    after = DetectorBank()  # cooling, noise, vibration, stuck sensors
    after.restore("ac-1", state)
    cooling, noise, *_ = after.detectors("ac-1")
    assert isinstance(cooling, CoolingDecline) and not cooling.learning
    assert isinstance(noise, NoiseRise) and noise.learning
    assert pickle.dumps(cooling) == pickle.dumps(before.detectors("ac-1")[0])


def test_min_rows_many_is_min_rows_of_each_block() -> None:
    rng = np.random.default_rng(11)
    det = CoolingDecline()
    width = 12
    ts = np.cumsum(rng.choice([5.0, 10.0, 60.0, 300.0], size=(40, width)), axis=1)
    lengths = np.full(40, width)
    lengths[:8] = rng.integers(0, width, size=8)  # short blocks, padded with NaN
    ts[3, 4] = ts[3, 3]  # a repeated time: a step that is not positive
    ts[5, 6] = np.nan  # a row without time
    for i, n in enumerate(lengths.tolist()):
        ts[i, n:] = np.nan
    got = det.min_rows_many(ts, lengths)
    assert got.tolist() == [det.min_rows(ts[i, :n]) for i, n in enumerate(lengths.tolist())]


def test_a_window_closing_past_learning_is_judged_without_the_reference(monkeypatch) -> None:
    """Regular blocks past learning: the windows they close are judged on the column path (no
    reference update), with the reference's findings and state."""
    make = functools.partial(NoiseRise, **FAST)
    calls: list[int] = []
    original = ShiftColumns._reference
    monkeypatch.setattr(
        ShiftColumns, "_reference", lambda self, row, b: calls.append(row) or original(self, row, b)
    )
    rng = np.random.default_rng(5)
    period, rows_per_block = 60.0, 20
    ts = 1.7e9 + np.arange(0.0, 30 * H, period)
    noise = 40.0 + rng.normal(0.0, 0.3, len(ts))
    noise[ts >= ts[0] + 20 * H] += 4.0  # a rise after learning
    reference, columns = make(), columns_for(make)
    row = columns.add()
    expected: list[Finding] = []
    got: list[Finding] = []
    judged_after_learning = 0
    for a in range(0, len(ts), rows_per_block):
        sl = slice(a, a + rows_per_block)
        b = Block("ac-1", ts[sl], {"noise_db": noise[sl], "fan_speed": np.full(len(ts[sl]), 2.0)})
        learning = reference.learning
        expected.extend(reference.update(b))
        before = len(calls)
        got.extend(columns.update_many([row], Batch.of([b]))[0])
        if not learning and len(calls) == before:
            judged_after_learning += 1
        elif not learning:
            raise AssertionError(f"block at {ts[a]} went to the reference")
    _same(got, expected)
    _same_state(columns.export(row), reference)
    assert any(f.active for f in got), "the rise should be found"
    assert judged_after_learning > 20


def test_a_new_devices_first_block_takes_the_stuck_column_path(monkeypatch) -> None:
    calls: list[str] = []
    original = SensorStuck.update
    monkeypatch.setattr(
        SensorStuck, "update", lambda self, b: calls.append(b.device) or original(self, b)
    )
    rng = np.random.default_rng(3)
    streams = {f"ac-{k}": _stream(rng, f"ac-{k}", 2.0)[:1] for k in range(6)}
    columns = columns_for(SensorStuck)
    rows = {d: columns.add() for d in streams}
    blocks = [bs[0] for bs in streams.values()]
    assert columns.update_many(list(rows.values()), Batch.of(blocks)) == [[]] * len(blocks)
    assert calls == []
    for d, b in zip(streams, blocks, strict=True):
        reference = SensorStuck()
        original(reference, b)
        _same_state(columns.export(rows[d]), reference)


def test_a_block_from_an_array_reads_its_columns_as_views() -> None:
    fields = ("supply_c", "ts", "return_c")
    values = np.arange(12.0).reshape(4, 3)
    b = Block.from_array("ac-1", fields, values)
    assert b.ts.tolist() == [1.0, 4.0, 7.0, 10.0]
    assert list(b.columns) == ["supply_c", "return_c"] and len(b.columns) == 2
    assert "return_c" in b.columns and "ts" not in b.columns
    assert b.get("return_c").tolist() == [2.0, 5.0, 8.0, 11.0] and b.get("noise_db") is None
    assert np.shares_memory(b.columns["supply_c"], values)
    assert dict(b.columns.items()).keys() == {"supply_c", "return_c"}
    again = pickle.loads(pickle.dumps(b))
    assert again.columns["return_c"].tolist() == b.columns["return_c"].tolist()
    with pytest.raises(ValueError, match="ts once"):
        Block.from_array("ac-1", ("ts", "a", "a"), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="ts once"):
        Block.from_array("ac-1", ("a", "b"), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="fields"):
        Block.from_array("ac-1", ("ts", "a"), np.zeros((1, 3)))
