"""A running ``qloop cloud run`` is observable and stops cleanly, through a real Mosquitto:

- its ``--metrics-port`` serves /healthz, /readyz (once subscribed) and /metrics whose counters
  match a known input (messages, readings, a duplicate, a malformed message as a dead letter of
  its kind, a seq gap as lost seqs); on exit the unit's lost seqs are in the ticket database;
- SIGTERM while a burst is queued: the worker exits 0, and every message the broker took (QoS 1)
  is in the journal once a restarted worker with the same client id has had what the first did
  not acknowledge; what the first journaled it also acknowledged (nothing comes twice).
"""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from benchmarks.common import collect_publishers, publish_in_processes, spawn_qloop
from benchmarks.ingest import journal_count, make_traffic, split
from contract import protocol
from contract.mqtt import BrokerAddress, MqttLink
from contract.protocol import Birth, Event, Telemetry
from tests.helpers import wait_for
from tests.scrape import get, samples

pytestmark = [pytest.mark.broker, pytest.mark.e2e]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(
    broker, wd: Path, client_id: str, port: int | None = None, *extra: str
) -> subprocess.Popen:
    args = [
        "--log-level", "INFO", "cloud", "run",
        "--broker", f"{broker.host}:{broker.port}",
        "--db", f"sqlite:///{wd / 'tickets.db'}",
        "--journal", str(wd / "journal.db"),
        "--client-id", client_id,
        "--ready-file", str(wd / "ready"),
    ]  # fmt: skip
    if port is not None:
        args += ["--metrics-port", str(port)]
    args += extra
    (wd / "ready").unlink(missing_ok=True)
    proc = spawn_qloop(args, wd / "worker.log")
    wait_for(lambda: (wd / "ready").exists() or proc.poll() is not None, 60, "subscribed")
    assert proc.poll() is None, (wd / "worker.log").read_text()
    return proc


def _stop(proc: subprocess.Popen, wd: Path) -> int:
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(120)
    log = (wd / "worker.log").read_text()
    assert "Traceback" not in log, log
    return rc


def _publish(broker, items: list[tuple[str, bytes, bool]]) -> None:
    """Publish with QoS 1 and wait until the broker acknowledged every message."""
    acked = threading.Semaphore(0)
    link = MqttLink("test-publisher", BrokerAddress.parse(f"{broker.host}:{broker.port}"))
    link.start()
    assert link.wait_connected(10)
    for topic, payload, retain in items:
        link.publish(topic, payload, qos=1, retain=retain, on_ack=acked.release)
    for _ in items:
        assert acked.acquire(timeout=30)
    link.close()


def _block(device: str, seq: int, t0: float, rows: int = 6) -> tuple[str, bytes, bool]:
    block = Telemetry(
        device, seq, ("ts", "t_in"), tuple((t0 + 600 * seq + 10 * k, 25.0) for k in range(rows))
    )
    return protocol.topic(device, "telemetry"), protocol.encode(block), False


def test_metrics_report_a_known_input_and_lost_seqs_reach_the_ticket_database(
    mosquitto, tmp_path
) -> None:
    port = _free_port()
    worker = _worker(mosquitto, tmp_path, "metrics-test", port)
    try:
        assert get(port, "/healthz") == (200, "ok\n")
        wait_for(lambda: get(port, "/readyz")[0] == 200, 30, "ready")
        assert get(port, "/nope")[0] == 404
        t0 = time.time() - 86_400
        birth = Birth("ac-metrics-1", "air_conditioner", "KFR-35GW", "B1", "SN1", "1.0", 10.0, t0)
        sent = [
            (protocol.topic(birth.device, "birth"), protocol.encode(birth), True),
            *(_block(birth.device, seq, t0) for seq in range(10) if seq not in (4, 5, 6)),
            _block(birth.device, 2, t0),  # a duplicate
            (protocol.topic(birth.device, "telemetry"), b"{not json", False),
        ]
        _publish(mosquitto, sent)

        def scraped() -> dict:
            status, body = get(port, "/metrics")
            return samples(body) if status == 200 else {}

        wait_for(lambda: scraped().get(("qloop_worker_acked_total", ())) == len(sent), 60, "acked")
        # lost seqs are recounted every 10 s (a pass over every device)
        wait_for(lambda: scraped().get(("qloop_worker_lost_seqs", ())) == 3, 30, "recounted")
        got = scraped()
        assert got[("qloop_worker_messages_total", ())] == len(sent)
        assert got[("qloop_worker_readings_total", ())] == 7 * 6
        assert got[("qloop_worker_duplicates_total", ())] == 1
        assert got[("qloop_worker_dead_letters_total", (("reason", "not_json"),))] == 1
        assert got[("qloop_worker_lost_seqs", ())] == 3  # seqs 4, 5 and 6 never came
        assert got[("qloop_worker_devices_with_lost_seqs", ())] == 1
        assert got[("qloop_worker_queue_depth", ())] == 0
        assert got[("qloop_worker_devices", ())] == 1
        assert ("process_resident_memory_bytes", ()) in got
    finally:
        rc = _stop(worker, tmp_path)
    assert rc == 0
    with sqlite3.connect(tmp_path / "tickets.db") as db:
        assert db.execute("SELECT device, lost_seqs FROM devices").fetchall() == [
            ("ac-metrics-1", 3)
        ]


def test_a_trip_beyond_the_rated_envelope_is_counted_and_opens_no_ticket(
    mosquitto, tmp_path
) -> None:
    """Three units trip their overcurrent protection: one with 47 °C outdoors, beyond the T1
    rating (43 °C), one pulling down a room at 34.5 °C, beyond the maximum operating test's
    32 °C indoors, one with 35 °C outdoors and its room at 27 °C. Through a real broker and
    ``qloop cloud run``, the first two are counted in /metrics, stored, and make no finding; the
    third is a finding and a ticket, as before."""
    port = _free_port()
    worker = _worker(mosquitto, tmp_path, "envelope-test", port)
    try:
        t0 = time.time() - 3_600
        sent = []
        for device, outdoor, room in (
            ("ac-hot-1", 47.0, 27.0),
            ("ac-hotroom-1", 35.0, 34.5),
            ("ac-warm-1", 35.0, 27.0),
        ):
            birth = Birth(device, "air_conditioner", "KFR-50GW", "B1", "SN", "1.0", 10.0, t0)
            context = {"ambient_c": outdoor, "return_c": room}
            trip = Event(device, 0, t0 + 60, "overcurrent", 10.8, 10.0, context)
            sent += [
                (protocol.topic(device, "birth"), protocol.encode(birth), True),
                (protocol.topic(device, "event"), protocol.encode(trip), False),
            ]
        _publish(mosquitto, sent)

        def scraped() -> dict:
            status, body = get(port, "/metrics")
            return samples(body) if status == 200 else {}

        wait_for(lambda: scraped().get(("qloop_worker_acked_total", ())) == len(sent), 60, "acked")
        got = scraped()
        assert got[("qloop_worker_events_total", ())] == 3  # all stored
        assert got[("qloop_worker_beyond_envelope_events_total", ())] == 2
    finally:
        rc = _stop(worker, tmp_path)
    assert rc == 0
    with sqlite3.connect(tmp_path / "tickets.db") as db:
        rows = db.execute("SELECT device FROM findings WHERE fault = 'overcurrent'").fetchall()
        tickets = db.execute("SELECT device FROM tickets WHERE fault = 'overcurrent'").fetchall()
    assert rows == [("ac-warm-1",)] and tickets == [("ac-warm-1",)]


def test_an_unreachable_influxdb_shows_as_retries_then_drops(mosquitto, tmp_path) -> None:
    port = _free_port()
    dead = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    worker = _worker(
        mosquitto, tmp_path, "influx-test", port,
        "--influx-url", dead, "--influx-org", "o", "--influx-bucket", "b",
    )  # fmt: skip
    try:
        t0 = time.time() - 86_400
        birth = Birth("ac-influx-1", "air_conditioner", "KFR-35GW", "B1", "SN1", "1.0", 10.0, t0)
        born = (protocol.topic(birth.device, "birth"), protocol.encode(birth), True)
        _publish(mosquitto, [born, *(_block(birth.device, seq, t0) for seq in range(5))])

        def scraped() -> dict:
            return samples(get(port, "/metrics")[1])

        wait_for(
            lambda: scraped().get(("qloop_worker_influx_write_retries_total", ()), 0) >= 1,
            60,
            "a failed InfluxDB write",
        )
        got = scraped()
        assert got[("qloop_worker_influx_points_buffered", ())] == 5 * 6
        assert got[("qloop_worker_influx_points_written_total", ())] == 0
        assert got[("qloop_worker_influx_points_dropped_total", ())] == 0
        assert got[("qloop_worker_readings_total", ())] == 5 * 6  # the journal has them all
    finally:
        assert _stop(worker, tmp_path) == 0
    # at exit the buffered points are tried once more, then counted as dropped (and said so)
    assert "points not written" in (tmp_path / "worker.log").read_text()


def test_sigterm_drains_the_queue_and_nothing_acknowledged_is_lost(mosquitto, tmp_path) -> None:
    traffic = make_traffic(150, 20)
    journal = tmp_path / "journal.db"
    worker = _worker(mosquitto, tmp_path, "drain-test")
    _publish(mosquitto, traffic.births)
    go, procs, out = publish_in_processes(
        mosquitto.host, mosquitto.port, split(traffic.messages, 2), tmp_path
    )
    go.set()  # a burst the worker is still working through when it is told to stop
    wait_for(lambda: journal_count(journal, "messages") > 0, 60, "the first message journaled")
    assert _stop(worker, tmp_path) == 0
    first = journal_count(journal, "messages")
    collect_publishers(procs, out)  # every message is now the broker's (PUBACK)

    restarted = _worker(mosquitto, tmp_path, "drain-test", port := _free_port())
    try:
        wait_for(
            lambda: journal_count(journal, "messages") == len(traffic.messages),
            120,
            "every message journaled",
        )
        # the rest, and the retained births again: the broker sends a session's unacknowledged
        # messages on connecting, before the retained ones a subscription brings
        expected = len(traffic.messages) - first + len(traffic.births)

        def counted() -> float:
            return samples(get(port, "/metrics")[1]).get(("qloop_worker_messages_total", ()), -1)

        wait_for(lambda: counted() >= expected, 30, "the counters of the rest")
        got = samples(get(port, "/metrics")[1])
    finally:
        assert _stop(restarted, tmp_path) == 0
    assert journal_count(journal, "dead_letters") == 0
    assert first > 0  # the first worker stopped part-way or at the end: both must hold
    # what the first worker journaled it acknowledged before it disconnected: the broker
    # redelivered none of it (the restarted worker would count it as a duplicate)
    assert got[("qloop_worker_duplicates_total", ())] == 0


def test_a_metrics_port_in_use_is_one_line(tmp_path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [
                *(sys.executable, "-m", "qloop", "cloud", "run", "--broker", "127.0.0.1:1"),
                *("--db", "", "--journal", str(tmp_path / "j.db"), "--metrics-port", str(port)),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=Path(__file__).resolve().parents[2],
        )
    assert done.returncode != 0
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and f"--metrics-port {port}" in err[0] and "Traceback" not in done.stderr


def _ticket_database(url: str, *, open_: bool) -> None:
    """Open or close the test's PostgreSQL database to new connections (closing also ends the
    worker's open ones): the ticket database going away and coming back."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(open_).lower()}')
        if not open_:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )


def test_a_ticket_database_outage_stops_the_worker_in_one_line_and_loses_no_finding(
    mosquitto, tmp_path, pg_url
) -> None:
    """The ticket database stops answering while a safety event comes in: the worker stops with
    one line that says so (exit 1, no traceback) and does not acknowledge the event; restarted
    once the database is back, it gets the event again and the finding is stored."""
    import sqlalchemy as sa

    worker = _worker(mosquitto, tmp_path, "outage-test", None, "--db", pg_url)
    engine = sa.create_engine(pg_url)
    try:
        t0 = time.time() - 86_400
        birth = Birth("ac-outage-1", "air_conditioner", "KFR-35GW", "B1", "SN1", "1.0", 10.0, t0)
        _publish(mosquitto, [(protocol.topic(birth.device, "birth"), protocol.encode(birth), True)])

        def registered() -> bool:
            with engine.connect() as c:
                return bool(c.execute(sa.text("SELECT count(*) FROM devices")).scalar())

        wait_for(registered, 60, "the unit registered")
        engine.dispose()
        _ticket_database(pg_url, open_=False)
        event = Event(birth.device, 1, t0 + 60, "overcurrent", 14.0, 10.0)
        sent = protocol.topic(birth.device, "event"), protocol.encode(event), False
        _publish(mosquitto, [sent])
        assert worker.wait(120) == 1
        log = (tmp_path / "worker.log").read_text()
        assert "Traceback" not in log, log
        last = log.strip().splitlines()[-1]
        assert "ticket database" in last and "restart" in last, log
        _ticket_database(pg_url, open_=True)
        worker = _worker(mosquitto, tmp_path, "outage-test", None, "--db", pg_url)

        def stored() -> int:
            with engine.connect() as c:
                return c.execute(
                    sa.text("SELECT count(*) FROM findings WHERE fault = 'overcurrent'")
                ).scalar()

        wait_for(stored, 60, "the finding stored after the restart")
        assert stored() == 1
    finally:
        _ticket_database(pg_url, open_=True)
        if worker.poll() is None:
            _stop(worker, tmp_path)
        engine.dispose()
