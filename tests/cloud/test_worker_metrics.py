"""The worker's metrics from a snapshot dict (no broker, no worker): what each key becomes,
that nothing is shown before the first snapshot, and the HTTP answers of the probes."""

from __future__ import annotations

from cloud.store.dead_letters import REASON_CLASSES, CountingJournal, reason_class
from cloud.worker_metrics import MetricsServer, Snapshots
from tests.scrape import get, samples

SNAPSHOT = {
    "messages": 12, "readings": 420, "duplicates": 2, "held": 0, "acked": 12, "births": 1,
    "telemetry": 7, "events": 1, "checkpoint_writes": 3, "late_blocks": 0,
    "reordered_blocks": 4, "lost_seqs": 5, "devices_with_lost_seqs": 2, "queued": 7,
    "queue_size": 10_000, "devices": 3, "batch_findings": 2, "peer_moves": 16,
    "peer_early_ends": 9,
    "dead_letters": {"not_json": 1, "clock_skew": 2},
    "findings_by_fault": {"cooling_decline": 1},
    "influx": {"buffered": 10, "in_flight": 5, "written": 400, "dropped": 1, "rejected": 0,
               "empty": 0, "requests": 2, "failed_writes": 3},
}  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_the_snapshot_becomes_metrics_and_probes_answer() -> None:
    clock, why = Clock(), ["not connected to the broker"]
    snapshots = Snapshots(clock)
    server = MetricsServer("127.0.0.1", 0, snapshots, lambda: why[0])
    server.start()
    try:
        assert get(server.port, "/healthz") == (200, "ok\n")
        assert get(server.port, "/readyz") == (503, "not connected to the broker\n")
        before = samples(get(server.port, "/metrics")[1])
        assert not any(name.startswith("qloop_") for name, _ in before)  # nothing yet
        snapshots.publish(SNAPSHOT)
        clock.t += 0.5
        why[0] = None
        assert get(server.port, "/readyz") == (200, "ready\n")
        got = samples(get(server.port, "/metrics")[1])
    finally:
        server.close()
    assert got[("qloop_worker_messages_total", ())] == 12
    assert got[("qloop_worker_readings_total", ())] == 420
    assert got[("qloop_worker_duplicates_total", ())] == 2
    assert got[("qloop_worker_dead_letters_total", (("reason", "clock_skew"),))] == 2
    assert got[("qloop_worker_findings_total", (("fault", "cooling_decline"),))] == 1
    assert got[("qloop_worker_lost_seqs", ())] == 5
    assert got[("qloop_worker_devices_with_lost_seqs", ())] == 2
    assert got[("qloop_worker_queue_depth", ())] == 7
    assert got[("qloop_worker_checkpoint_writes_total", ())] == 3
    assert got[("qloop_worker_influx_write_retries_total", ())] == 3
    assert got[("qloop_worker_batch_findings_total", ())] == 2
    assert got[("qloop_worker_peer_moves_total", ())] == 16
    assert got[("qloop_worker_peer_early_ends_total", ())] == 9
    assert got[("qloop_worker_influx_points_dropped_total", ())] == 1
    assert got[("qloop_worker_influx_points_buffered", ())] == 15
    assert got[("qloop_worker_snapshot_age_seconds", ())] == 0.5


def test_without_influx_there_are_no_influx_metrics() -> None:
    snapshots = Snapshots()
    snapshots.publish({**SNAPSHOT, "influx": None})
    server = MetricsServer("127.0.0.1", 0, snapshots, lambda: None)
    server.start()
    try:
        got = samples(get(server.port, "/metrics")[1])
    finally:
        server.close()
    assert not any("influx" in name for name, _ in got)
    assert got[("qloop_worker_acked_total", ())] == 12


def test_dead_letters_are_counted_by_a_few_kinds_of_reason(tmp_path) -> None:
    journal = CountingJournal(tmp_path / "j.db")
    for reason in (
        "topic 'a/b' is not qloop/v1/<pp>/<device>/<kind>",
        "payload of 2000000 bytes exceeds 1048576",
        "payload is not UTF-8 JSON: Expecting value",
        "unsupported version v=2 (expected 1)",
        "clock skew: a reading is stamped 3650 days ahead of the worker clock",
        "internal error while ingesting",
        "row 3: 'ts' must not be null",
        "'seq' must be a non-negative integer",
    ):
        journal.dead_letter("t", b"x", reason, 1.0)
    journal.commit()
    assert journal.count("dead_letters") == 8  # still kept, with the whole reason
    journal.close()
    assert dict(journal.dead_letter_counts) == {
        "topic": 1, "too_large": 1, "not_json": 1, "version": 1, "clock_skew": 1,
        "internal_error": 1, "contract": 2,
    }  # fmt: skip
    assert set(journal.dead_letter_counts) == set(REASON_CLASSES)
    assert reason_class("") == "contract"


def test_a_server_never_started_closes() -> None:
    server = MetricsServer("127.0.0.1", 0, Snapshots(), lambda: None)
    server.close()  # returns: nothing to wait for
