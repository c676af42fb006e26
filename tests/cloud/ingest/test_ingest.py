"""The ingest core without MQTT: dead letters, de-duplication, births, held telemetry."""

from __future__ import annotations

import math

import pytest

from cloud.anomaly.bank import DetectorBank
from cloud.anomaly.clock import ClockCheck
from cloud.ingest.ingestor import Ingestor
from cloud.store.journal import Journal
from contract import protocol
from contract.mqtt import InboundMessage
from contract.protocol import Birth, Event, Telemetry
from qloop.cli import main


def _msg(m) -> InboundMessage:
    return InboundMessage(
        protocol.topic(m.device, protocol.kind_of(m)), protocol.encode(m), False, False
    )


# These tests count in small made-up times; what the clock check refuses is tested below.
TRUST_ANY_TIME = ClockCheck(ahead_s=math.inf, earliest_ts=-math.inf)


def _tel(device: str, seq: int, t0: float = 0.0, n: int = 3) -> Telemetry:
    return Telemetry(device, seq, ("ts", "x"), tuple((t0 + i, float(i)) for i in range(n)))


@pytest.fixture
def ingest(tmp_path):
    findings = []
    journal = Journal(tmp_path / "journal.db")
    ing = Ingestor(
        journal,
        DetectorBank({}),
        lambda f, info: findings.append((f, info)),
        clock_check=TRUST_ANY_TIME,
        clock=lambda: 1000.0,
    )
    ing.findings = findings
    yield ing
    journal.close()


def test_malformed_messages_are_kept_with_their_reason(ingest):
    ingest.handle(InboundMessage("qloop/v1/00/x/telemetry", b"{}", False, False))
    ingest.handle(InboundMessage(protocol.topic("d1", "telemetry"), b"{oops", False, False))
    ingest.handle(_msg(_tel("d1", 0)))
    assert ingest.stats.malformed == 2 and ingest.stats.telemetry == 1
    reasons = [r[3] for r in ingest.journal.dead_letters()]
    assert any("partition" in r for r in reasons) and any("JSON" in r for r in reasons)
    assert {r[2] for r in ingest.journal.dead_letters()} == {b"{}", b"{oops"}


def test_duplicates_are_stored_and_counted_once(ingest, tmp_path):
    for seq in (0, 1, 1, 3, 0, 2, 3):
        ingest.handle(_msg(_tel("d1", seq, t0=seq * 10)))
    assert ingest.stats.telemetry == 4 and ingest.stats.duplicates == 3
    assert ingest.journal.seqs("d1") == [0, 1, 2, 3]
    ingest.journal.commit()
    # a new worker (empty memory) still refuses a copy: the journal's key
    again = Ingestor(
        ingest.journal,
        DetectorBank({}),
        lambda f, i: None,
        clock_check=TRUST_ANY_TIME,
        clock=lambda: 0.0,
    )
    again.handle(_msg(_tel("d1", 2, t0=20)))
    assert again.stats.duplicates == 1 and again.stats.telemetry == 0


def test_telemetry_waits_for_birth_then_goes_on_with_its_tags(ingest):
    seen = []
    ingest.on_points = lambda info, m: seen.append((info.batch, m.seq))
    ingest.handle(_msg(_tel("d1", 0)))
    assert seen == [] and ingest.stats.held == 1
    ingest.handle(_msg(Birth("d1", "air_conditioner", "KFR-35GW", "B7", "SN", "1.0", 10.0, 0.0)))
    assert seen == [("B7", 0)]
    ingest.handle(_msg(_tel("d1", 1, t0=10)))
    assert seen[-1] == ("B7", 1)


def test_no_birth_ever_processes_as_unknown_after_the_hold_limit(ingest):
    seen = []
    ingest.on_points = lambda info, m: seen.append(info.batch)
    ingest.hold_limit = 3
    for seq in range(5):
        ingest.handle(_msg(_tel("d9", seq, t0=seq * 10)))
    assert seen == ["unknown"] * 5


def test_overcurrent_event_becomes_a_finding(ingest):
    ingest.handle(_msg(Birth("d1", "air_conditioner", "KFR-35GW", "B7", "SN", "1.0", 10.0, 0.0)))
    ingest.handle(_msg(Event("d1", 0, 123.0, "overcurrent", 12.5, 10.0)))
    ingest.handle(_msg(Event("d1", 1, 124.0, "door_opened", None, None)))
    ((f, info),) = ingest.findings
    assert (f.fault, f.ts, f.evidence["value"], info.batch) == ("overcurrent", 123.0, 12.5, "B7")
    assert ingest.stats.events == 2


def test_an_overcurrent_trip_beyond_the_rated_envelope_is_kept_but_makes_no_finding(ingest):
    """Hotter outdoors than the model is rated for (T1: 43 °C), a sound unit's protection trips
    too: the event is kept and counted, with no finding; a trip within the envelope, or one
    whose event does not say the outdoor temperature, is a finding as before."""
    ingest.handle(_msg(Birth("d1", "air_conditioner", "KFR-35GW", "B7", "SN", "1.0", 10.0, 0.0)))
    ingest.handle(_msg(Event("d1", 0, 100.0, "overcurrent", 10.8, 10.0, {"ambient_c": 46.0})))
    assert ingest.findings == [] and ingest.events.beyond == {"overcurrent": 1}
    ingest.handle(_msg(Event("d1", 1, 200.0, "overcurrent", 12.5, 10.0, {"ambient_c": 35.0})))
    ((f, _),) = ingest.findings
    assert f.evidence["outdoor_c"] == 35.0 and f.evidence["events"] == 1.0
    ingest.handle(_msg(Event("d1", 2, 4000.0, "overcurrent", 12.5, 10.0)))  # an hour on
    trips = [f for f, _ in ingest.findings if f.fault == "overcurrent"]
    assert len(trips) == 2 and "outdoor_c" not in trips[1].evidence
    ingest.store()
    assert ingest.stats.events == 3  # every one of them stored


def test_a_flurry_of_safety_events_makes_one_finding_an_hour_and_keeps_every_event(ingest):
    ingest.handle(_msg(Birth("d1", "air_conditioner", "KFR-35GW", "B7", "SN", "1.0", 10.0, 0.0)))
    values = [10.5, 14.0, 11.0, 12.0, 10.8]
    for seq, v in enumerate(values):  # a minute apart, all within the first finding's hour
        ingest.handle(_msg(Event("d1", seq, 1000.0 + 60 * seq, "overcurrent", v, 10.0)))
    ingest.handle(_msg(Event("d1", 5, 1000.0 + 3600, "overcurrent", 10.2, 10.0)))
    ingest.handle(_msg(Event("d1", 6, 1000.0 + 3700, "overheat", 43.0, 42.0)))  # its own kind
    # (the 56 min between seq 4 and 5 is also a silence in the device's own stream, longer than
    # the 30 min it may be silent: a device_offline episode, tests/cloud/anomaly/
    # test_offline_in_stream.py; only the events' findings are this test's)
    got = [
        (f.fault, f.ts, f.onset_ts, dict(f.evidence))
        for f, _ in ingest.findings
        if f.fault != "device_offline"
    ]
    assert got == [
        (
            "overcurrent",
            1000.0,
            1000.0,
            {"value": 10.5, "limit": 10.0, "events": 1.0, "max_value": 10.5},
        ),
        (
            "overcurrent",
            4600.0,
            1060.0,
            {"value": 10.2, "limit": 10.0, "events": 5.0, "max_value": 14.0},
        ),
        (
            "overheat",
            4700.0,
            4700.0,
            {"value": 43.0, "limit": 42.0, "events": 1.0, "max_value": 43.0},
        ),
    ]
    assert ingest.stats.events == 7 and ingest.journal.seqs("d1") == list(range(7))


def _spy_on_thermometers(ingest: Ingestor) -> list[float]:
    """Give "thermometer" devices one detector that records the first ts of each block fed."""
    fed: list[float] = []

    class Spy:
        fault = "spy"

        def update(self, block):
            fed.append(float(block.ts[0]))
            return []

    ingest.detectors.factories = {"thermometer": (Spy,)}
    return fed


def test_blocks_out_of_order_are_fed_in_seq_order_and_events_fill_gaps(ingest):
    fed = _spy_on_thermometers(ingest)
    ingest.handle(_msg(Birth("d1", "thermometer", "M", "B", "SN", "1.0", 10.0, 0.0)))
    for m in (_tel("d1", 0, 0), _tel("d1", 3, 30), _tel("d1", 2, 20)):
        ingest.handle(_msg(m))
    assert fed == [0.0]  # seq 1 is missing: 2 and 3 wait for it
    ingest.handle(_msg(Event("d1", 1, 10.0, "door_opened", None, None)))  # an event was seq 1
    assert fed == [0.0, 20.0, 30.0]
    assert ingest.detectors.reordered_blocks == 2 and ingest.detectors.late_blocks == 0


def test_a_dead_letter_or_an_empty_block_fills_its_gap_at_once(ingest):
    fed = _spy_on_thermometers(ingest)
    topic = protocol.topic("d1", "telemetry")
    for m in (
        Birth("d1", "thermometer", "M", "B", "SN", "1.0", 10.0, 0.0),
        _tel("d1", 0, 0),
        _tel("d1", 2, 20),
        _tel("d1", 4, 40),
    ):
        ingest.handle(_msg(m))
    assert fed == [0.0]
    # seq 1 arrives broken: dead-lettered, but its seq is readable, so 2 need not wait for it
    ingest.handle(InboundMessage(topic, b'{"v": 1, "seq": 1, "device": "d1", "rows": 5}', 0, 0))
    assert fed == [0.0, 20.0] and ingest.stats.malformed == 1
    # seq 3 is a block with no rows: nothing to judge, but not a gap either
    ingest.handle(_msg(Telemetry("d1", 3, ("ts", "x"), ())))
    assert fed == [0.0, 20.0, 40.0]
    # a dead letter that names another device's seq, or none, moves nothing
    ingest.handle(_msg(_tel("d1", 6, 60)))
    ingest.handle(InboundMessage(topic, b'{"v": 1, "seq": 5, "device": "d2"}', 0, 0))
    ingest.handle(InboundMessage(topic, b'{"v": 1, "seq": "5"}', 0, 0))
    assert fed == [0.0, 20.0, 40.0] and ingest.stats.malformed == 3
    # an intact copy of a seq whose broken copy was dead-lettered is still stored and judged
    ingest.handle(_msg(_tel("d1", 1, 10)))
    assert ingest.journal.seqs("d1") == [0, 1, 2, 4, 6] and ingest.stats.telemetry == 5


def test_seq_tracker_folds_gaps_and_forgets_them():
    from cloud.ingest.dedup import SeqTracker

    t = SeqTracker(max_ahead=3)
    assert [t.add(s) for s in (0, 2, 3, 2, 1, 0)] == [True, True, True, False, True, False]
    assert t.floor == 3 and not t.ahead, "a filled gap leaves nothing waiting"
    for s in (10, 11, 12, 13):  # a gap (4-9) that never fills: given up past max_ahead
        assert t.add(s)
    assert t.floor == 13 and not t.ahead and not t.add(7)


def test_the_dead_letter_report_says_what_was_refused_and_why(ingest, capsys):
    topic = protocol.topic("d1", "telemetry")
    for payload in (b"{oops", b"{oops", b'{"v": 2}', b"\x00\xff binary"):
        ingest.handle(InboundMessage(topic, payload, False, False))
    ingest.handle(_msg(_tel("d1", 0)))  # a good one is not in the report
    ingest.journal.commit()
    assert main(["cloud", "dead-letters", "--journal", ingest.journal.path, "--latest", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("4 dead letter(s) in ")
    common = out.split("most frequent reasons:")[1].split("latest 2:")[0].strip().splitlines()
    assert len(common) == 3 and common[0].split()[0] == "2" and "not UTF-8 JSON" in common[0]
    assert "unsupported version v=2" in out
    assert "\\x00\\xff binary (9 bytes)" in out  # the latest, escaped
    assert out.count(f"  {topic}") == 2


def test_the_dead_letter_report_refuses_what_is_not_a_journal(tmp_path):
    with pytest.raises(SystemExit, match="no journal at"):
        main(["cloud", "dead-letters", "--journal", str(tmp_path / "nope.db")])
    (tmp_path / "other.db").write_bytes(b"")
    with pytest.raises(SystemExit, match="is not a qloop journal"):
        main(["cloud", "dead-letters", "--journal", str(tmp_path / "other.db")])


NOW = 1_700_000_000.0  # the worker's clock in the clock tests


@pytest.fixture
def clocked(tmp_path):
    """An ingestor with the default clock check, its clock at NOW, and a born device d1."""
    findings = []
    ing = Ingestor(
        Journal(tmp_path / "journal.db"),
        DetectorBank({}),
        lambda f, info: findings.append(f),
        clock=lambda: NOW,
    )
    ing.findings = findings
    ing.handle(_msg(Birth("d1", "air_conditioner", "M", "B", "SN", "1.0", 10.0, NOW - 100)))
    ing.handle(_msg(_tel("d1", 0, t0=NOW - 60)))
    yield ing
    ing.journal.close()


@pytest.mark.parametrize(
    ("ts", "why"),
    [
        (NOW + 10 * 365.25 * 86400, "3653 days ahead of the worker clock"),
        (0.0, "before 2000 (clock not set)"),
        (-5.0, "before 2000"),
    ],
)
def test_times_that_cannot_be_true_are_refused_and_move_nothing(clocked, ts, why):
    before = (clocked.registry.get("d1").last_ts, clocked.offline.present())
    clocked.handle(_msg(_tel("d1", 1, t0=ts)))
    assert clocked.stats.clock_skew == 1 and clocked.stats.telemetry == 1  # only seq 0
    ((_, _, _, reason),) = clocked.journal.dead_letters()
    assert why in reason
    (f,) = clocked.findings
    assert (f.fault, f.active, f.ts) == ("clock_skew", True, NOW - 58)  # its last believed time
    assert (clocked.registry.get("d1").last_ts, clocked.offline.present()) == before
    assert clocked.journal.seqs("d1") == [0]
    clocked.handle(_msg(_tel("d1", 2, t0=NOW - 50)))  # a sane block ends the episode
    assert [(f.fault, f.active) for f in clocked.findings] == [
        ("clock_skew", True),
        ("clock_skew", False),
    ]


def test_an_infinite_time_is_refused(clocked):
    body = b'{"v": 1, "device": "d1", "seq": 1, "fields": ["ts", "x"], "rows": [[1e400, 1.0]]}'
    clocked.handle(InboundMessage(protocol.topic("d1", "telemetry"), body, False, False))
    assert clocked.stats.clock_skew == 1
    assert "not a time" in clocked.journal.dead_letters()[0][3]


def test_times_whose_sum_overflows_are_judged_by_the_reason_and_kept_as_they_are(ingest):
    """A block's span is checked from its rows' sum first; finite times too large to sum
    (believable by this test's trusting clock check) still go in, with their own bounds."""
    ingest.handle(_msg(Telemetry("d1", 0, ("ts", "x"), ((1.5e308, 1.0), (1.0e308, 2.0)))))
    body = b'{"v": 1, "device": "d1", "seq": 1, "fields": ["ts", "x"], "rows": [[1e400, 1.0]]}'
    ingest.handle(InboundMessage(protocol.topic("d1", "telemetry"), body, False, False))
    assert ingest.stats.telemetry == 1 and ingest.stats.clock_skew == 1  # inf: not a time
    ingest.journal.commit()
    rows = ingest.journal._db.execute("SELECT seq, t0, t1 FROM messages").fetchall()
    assert rows == [(0, 1.0e308, 1.5e308)]
    assert ingest.registry.get("d1").last_ts == 1.5e308


def test_lost_seqs_are_counted_per_device_until_they_come(ingest):
    for seq in (0, 1, 4, 5):
        ingest.handle(_msg(_tel("d1", seq, t0=10.0 * seq)))
    ingest.handle(_msg(_tel("d2", 7)))  # a device first heard mid-stream has lost nothing
    assert ingest.lost_seqs() == {"d1": 2}
    ingest.handle(_msg(Event("d1", 2, 25.0, "door_open", None, None)))  # an event is a seq too
    ingest.handle(_msg(_tel("d1", 3, t0=30.0)))
    assert ingest.lost_seqs() == {}


def test_lost_seqs_hold_across_a_restart(ingest):
    """A new worker on the same journal counts the gaps the journal has, those lost while no
    worker ran, and those since: not from zero again."""
    for seq in (0, 1, 3):
        ingest.handle(_msg(_tel("d1", seq, t0=10.0 * seq)))
    ingest.handle(_msg(_tel("d2", 0)))
    ingest.journal.commit()
    assert ingest.lost_seqs() == {"d1": 1}

    def restarted() -> Ingestor:
        return Ingestor(
            ingest.journal,
            DetectorBank({}),
            lambda f, i: None,
            clock_check=TRUST_ANY_TIME,
            clock=lambda: 0.0,
        )

    again = restarted()
    assert again.lost_seqs() == {"d1": 1}  # before it hears anything
    again.handle(_msg(_tel("d1", 6, t0=60.0)))  # 4 and 5 went while no worker ran
    again.handle(_msg(_tel("d2", 1, t0=10.0)))  # nothing lost between runs
    again.handle(_msg(_tel("d2", 3, t0=30.0)))  # 2 lost since
    assert again.lost_seqs() == {"d1": 3, "d2": 1}
    again.journal.commit()
    assert restarted().lost_seqs() == {"d1": 3, "d2": 1}  # the journal's own recount


def test_a_micro_batch_is_judged_at_once_and_a_safety_event_waits_for_it_not(ingest):
    """The worker receives a batch and then judges it: readings reach the detectors only at
    :meth:`Ingestor.judge`, each device's blocks in seq order, but a safety event's finding is
    handed on as soon as the event is received."""
    fed = _spy_on_thermometers(ingest)
    for d in ("d1", "d2"):
        ingest.handle(_msg(Birth(d, "thermometer", "M", "B", "SN", "1.0", 10.0, 0.0)))
    for m in (_tel("d1", 0, 0), _tel("d2", 0, 100), _tel("d1", 2, 20), _tel("d1", 1, 10)):
        ingest.receive(_msg(m))
    ingest.receive(_msg(Event("d2", 1, 110.0, "overcurrent", 12.5, 10.0)))
    assert fed == [] and [f.fault for f, _ in ingest.findings] == ["overcurrent"]
    ingest.judge()
    assert [t for t in fed if t < 100] == [0.0, 10.0, 20.0] and 100.0 in fed
    assert ingest.detectors.last_ts("d1") == 22.0 and ingest.detectors.last_ts("d2") == 102.0


def test_a_micro_batch_is_journaled_at_once_in_the_order_each_device_sent(ingest, monkeypatch):
    """Telemetry waits in memory until :meth:`Ingestor.store` journals it with one statement;
    any other message stores what waits first, so each device's messages are handled in the
    order received (an event between two blocks fills its seq with nothing reordered)."""
    fed = _spy_on_thermometers(ingest)
    calls = []
    add_messages = ingest.journal.add_messages
    monkeypatch.setattr(
        ingest.journal,
        "add_messages",
        lambda rows: calls.append(list(rows)) or add_messages(calls[-1]),
    )
    ingest.handle(_msg(Birth("d1", "thermometer", "M", "B", "SN", "1.0", 10.0, 0.0)))
    for m in (_tel("d1", 0, 0), _tel("d1", 1, 10), _tel("d1", 1, 10)):
        ingest.receive(_msg(m))
    assert ingest.journal.seqs("d1") == [] and ingest.stats.duplicates == 1  # the copy: memory
    ingest.receive(_msg(Event("d1", 2, 15.0, "door_opened", None, None)))
    assert [[r[1] for r in c] for c in calls] == [[0, 1]] and ingest.journal.seqs("d1") == [0, 1, 2]
    for m in (_tel("d1", 3, 20), _tel("d1", 4, 30)):
        ingest.receive(_msg(m))
    ingest.judge()
    assert [[r[1] for r in c] for c in calls] == [[0, 1], [3, 4]]
    assert fed == [0.0, 10.0, 20.0, 30.0] and ingest.detectors.reordered_blocks == 0
    assert ingest.stats.telemetry == 4 and ingest.stats.readings == 12


def test_a_batch_with_copies_journaled_before_this_worker_began_feeds_only_the_new(ingest):
    for seq in (0, 1):
        ingest.handle(_msg(_tel("d1", seq, t0=10.0 * seq)))
    ingest.journal.commit()
    fresh = Ingestor(
        ingest.journal, DetectorBank({}), lambda f, i: None, clock_check=TRUST_ANY_TIME,
        clock=lambda: 0.0,
    )  # fmt: skip
    for seq in (0, 1, 2, 3):  # the broker redelivers what was stored but not acknowledged
        fresh.receive(_msg(_tel("d1", seq, t0=10.0 * seq)))
    fresh.judge()
    assert fresh.stats.duplicates == 2 and fresh.stats.telemetry == 2
    assert ingest.journal.seqs("d1") == [0, 1, 2, 3] and fresh.registry.get("d1").first_ts == 20.0


def test_judged_names_the_devices_whose_judged_time_moved(ingest):
    """What the worker hands ticketing after a batch: a device whose block waits for a gap, or
    that sent only an event, has no new judged time."""
    _spy_on_thermometers(ingest)
    for d in ("d1", "d2", "d3"):
        ingest.handle(_msg(Birth(d, "thermometer", "M", "B", "SN", "1.0", 10.0, 0.0)))
    ingest.handle(_msg(_tel("d2", 0, 0)))
    ingest.judged.clear()
    ingest.processed.clear()
    ingest.receive(_msg(_tel("d1", 0, 100)))
    ingest.receive(_msg(_tel("d2", 2, 20)))  # seq 1 missing: waits
    ingest.receive(_msg(Event("d3", 0, 5.0, "door_opened", None, None)))
    ingest.judge()
    assert ingest.processed == {"d1", "d2", "d3"} and ingest.judged == {"d1": 102.0}
    ingest.receive(_msg(Event("d2", 1, 15.0, "door_opened", None, None)))  # fills the gap
    ingest.judge()
    assert ingest.judged == {"d1": 102.0, "d2": 22.0}
