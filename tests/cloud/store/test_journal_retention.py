"""The journal's retention (Journal.prune, ``--journal-retention-days``): old messages go a slice
at a time, each device's newest stays, and the lost-seq count is the same before and after."""

from __future__ import annotations

import random

import pytest

from cloud.store.journal import Journal
from cloud.worker import Worker
from cloud.worker_settings import WorkerSettings

DAY = 86_400.0


def _store(j: Journal, device: str, seqs: list[int], received: float) -> None:
    j.add_messages((device, s, "telemetry", s, s + 1.0, received, b"{}") for s in seqs)
    j.commit()


def test_old_messages_go_the_newest_of_each_device_stays_and_lost_seqs_hold(tmp_path) -> None:
    j = Journal(tmp_path / "j.db")
    _store(j, "a", [0, 1, 3, 4, 7], received=1 * DAY)  # 5 and 6 and 2 never came
    _store(j, "b", [10, 11], received=1 * DAY)  # silent since: its newest must stay
    _store(j, "a", [8, 9, 12], received=5 * DAY)  # 10 and 11 lost later
    before = j.seq_spans()
    assert before == {"a": (5, 12), "b": (0, 11)}

    deleted = j.prune(before=3 * DAY)
    j.commit()

    assert deleted == 6  # a's five of day 1, b's 10
    assert j.seqs("a") == [8, 9, 12] and j.seqs("b") == [11]
    assert j.seq_spans() == before  # what the deleted messages said about lost data is kept
    assert j.prune(before=3 * DAY) == 0  # nothing more to do, and it does not rescan


def test_prune_goes_a_slice_at_a_time_and_stops_at_the_first_recent_message(tmp_path) -> None:
    j = Journal(tmp_path / "j.db")
    _store(j, "a", list(range(100)), received=1 * DAY)
    _store(j, "a", list(range(100, 110)), received=10 * DAY)
    assert [j.prune(before=2 * DAY, limit=40) for _ in range(4)] == [40, 40, 20, 0]
    j.commit()
    assert j.seqs("a") == list(range(100, 110))
    assert j.seq_spans() == {"a": (0, 109)}


def test_prune_keeps_up_with_what_came_in(tmp_path) -> None:
    # a fast fleet: more came in since the last prune than one 20,000-row slice; the default
    # slice is twice what came in, so a prune per checkpoint never falls behind
    j = Journal(tmp_path / "j.db")
    _store(j, "a", list(range(30_000)), received=1 * DAY)
    _store(j, "a", [30_000], received=10 * DAY)
    assert j.prune(before=2 * DAY) == 30_000
    _store(j, "a", list(range(30_001, 30_101)), received=10 * DAY)
    assert j.prune(before=11 * DAY, limit=None) == 100  # the newest, 30,100, stays


def test_pruned_and_kept_agree_on_random_journals(tmp_path) -> None:
    rng = random.Random(7)
    j = Journal(tmp_path / "j.db")
    for day in range(10):
        for device in ("a", "b", "c"):
            seqs = rng.sample(range(day * 50, day * 50 + 50), rng.randint(0, 50))
            _store(j, device, sorted(seqs), received=day * DAY)
    # a late copy of an old seq from the edge's buffer, received now
    _store(j, "a", [3], received=9 * DAY) if 3 not in j.seqs("a") else None
    expected = j.seq_spans()
    for cut in (2, 5, 5, 9):
        while j.prune(before=cut * DAY, limit=37):
            pass
        j.commit()
        assert j.seq_spans() == expected, cut
    newest = {d: n for d, (_, n) in expected.items()}
    assert all(max(j.seqs(d)) == n for d, n in newest.items())


def test_a_reopened_journal_keeps_the_pruned_counts(tmp_path) -> None:
    j = Journal(tmp_path / "j.db")
    _store(j, "a", [0, 2, 4], received=0.0)
    _store(j, "a", [6], received=5 * DAY)
    j.prune(before=DAY)
    j.close()
    again = Journal(tmp_path / "j.db")
    assert again.seqs("a") == [6]
    assert again.seq_spans() == {"a": (3, 6)}


@pytest.mark.parametrize("days", ["0.5", "-1"])
def test_a_retention_under_a_day_is_refused(days: str) -> None:
    from qloop.loading import load
    from qloop.settings import SettingsError

    with pytest.raises(SettingsError, match="journal-retention-days"):
        load("cloud", {"journal_retention_days": days}, environ={})


def test_the_worker_prunes_its_journal_at_each_checkpoint(tmp_path) -> None:
    from contract import protocol
    from contract.mqtt import BrokerAddress, InboundMessage
    from contract.protocol import Birth, Telemetry

    now = [1_700_000_000.0]
    settings = WorkerSettings(
        broker=BrokerAddress(),  # never connected: messages are queued by hand
        partitions=tuple(range(64)),
        db_url="",
        journal_path=str(tmp_path / "w.db"),
        queue_size=100,
        journal_retention_s=2 * DAY,
    )
    worker = Worker(settings, clock=lambda: now[0])
    birth = Birth("u-1", "thermometer", "M1", "B1", "SN-1", "1.0", 60.0, 0.0)

    def deliver(*messages) -> None:
        for m in messages:
            topic = protocol.topic(m.device, protocol.kind_of(m))
            worker._queue.put(InboundMessage(topic, protocol.encode(m), False, False))
        while worker.process_batch(timeout=0.0):
            pass

    def block(seq: int) -> Telemetry:
        t0 = now[0] - 3600 + seq
        return Telemetry("u-1", seq, ("ts", "x"), ((t0, 20.0), (t0 + 60, 20.5)))

    deliver(birth, block(0), block(1), block(3))  # seq 2 lost on the way
    now[0] += 3 * DAY
    deliver(block(4), block(5))
    worker.checkpoint()
    try:
        assert worker.journal.seqs("u-1") == [4, 5]
        assert worker.snapshot()["journal_pruned"] == 3
        assert worker.journal.seq_spans() == {"u-1": (1, 5)}  # the lost seq is still counted
    finally:
        worker.journal.close()
