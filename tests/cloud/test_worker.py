"""The cloud worker against a real Mosquitto: persistent sessions, partitions, bad input, order.

Each test starts real workers (paho, the journal, the detectors) in threads and publishes
contract messages with a real MQTT client; the broker is the ``mosquitto`` fixture.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cloud.store.checkpoints import SqlCheckpoints
from cloud.store.journal import Journal
from cloud.worker import Worker
from cloud.worker_settings import WorkerSettings
from contract import protocol
from contract.mqtt import BrokerAddress, MqttLink
from contract.protocol import Birth, Message, Telemetry
from simulators.fleet import Fleet
from simulators.scenario import parse_scenario
from tests.helpers import publishing, wait_for

pytestmark = pytest.mark.broker

FIELDS = ("ts", "x")


def _settings(broker, tmp_path: Path, name: str, partitions=range(64), **kw) -> WorkerSettings:
    return WorkerSettings(
        broker=BrokerAddress.parse(broker.address),
        partitions=tuple(partitions),
        db_url=kw.pop("db_url", ""),
        journal_path=str(tmp_path / f"{name}.db"),
        queue_size=kw.pop("queue_size", 10_000),
        client_id=f"test-{name}",
        **kw,
    )


@contextmanager
def running(settings: WorkerSettings) -> Iterator[Worker]:
    worker = Worker(settings)
    thread = threading.Thread(target=worker.run, name="worker", daemon=True)
    thread.start()
    try:
        assert worker.link.wait_connected(10), "worker could not connect"
        assert worker.link.wait_subscribed(10), "worker could not subscribe"
        yield worker
    finally:
        worker.stop()
        thread.join(30)
        assert not thread.is_alive(), "worker did not stop"


def publisher(broker):  # the shared helper, given the broker fixture
    return publishing(broker.address)


def send(link: MqttLink, *messages: Message, retain: bool = False) -> None:
    for m in messages:
        kind = protocol.kind_of(m)
        link.publish(protocol.topic(m.device, kind), protocol.encode(m), retain=retain)


def birth(device: str, product: str = "thermometer") -> Birth:
    return Birth(device, product, "M1", "B1", f"SN-{device}", "1.0", 60.0, 0.0)


def tel(device: str, seq: int, rows: int = 3) -> Telemetry:
    t0 = 1_700_000_000.0 + seq * 600.0
    return Telemetry(device, seq, FIELDS, tuple((t0 + 60 * i, 20.0 + i) for i in range(rows)))


def stored(path: str, device: str) -> list[int]:
    j = Journal(path)
    try:
        return j.seqs(device)
    finally:
        j.close()


def _ready(worker: Worker, link: MqttLink, device: str) -> None:
    """Publish a retained birth and wait for it: the worker's subscription is in place."""
    send(link, birth(device), retain=True)
    wait_for(lambda: worker.ingestor.registry.known(device), 10, f"birth of {device}")


def _aircon_blocks(hours: int) -> tuple[Birth, list[Telemetry]]:
    """A simulated air conditioner's birth and hourly 60-row blocks."""
    scenario = parse_scenario(
        'name="t"\nseed=5\nstart_ts=1719763200\nduration_s="2d"\nsample_period_s=60\n'
        '[[batches]]\nbatch="B1"\nmodel="KFR-35GW"\nunits=1\n'
    )
    fleet = Fleet(scenario)
    device = fleet.units[0].device
    rows = [fleet.step(scenario.start_ts + 60.0 * (i + 1))[0][0] for i in range(hours * 60)]
    blocks = [
        Telemetry(device, k, fleet.fields, tuple(tuple(map(float, r)) for r in rows[a : a + 60]))
        for k, a in enumerate(range(0, len(rows), 60))
    ]
    return Birth(device, "air_conditioner", "KFR-35GW", "B1", "SN-1", "2.3.0", 60.0, 0.0), blocks


def _judged(worker: Worker, block: Telemetry) -> bool:
    """The worker's detectors have judged ``block`` (received is not enough: the detectors
    judge a micro-batch after receiving all of it)."""
    return worker.ingestor.detectors.last_ts(block.device) == block.rows[-1][0]


def test_restarted_worker_receives_what_it_missed_and_resumes_detectors(mosquitto, tmp_path):
    settings = _settings(mosquitto, tmp_path, "w", db_url=f"sqlite:///{tmp_path / 'tickets.db'}")
    # a day and a half of a simulated air conditioner: enough for its detectors to learn
    ac, blocks = _aircon_blocks(40)
    device = ac.device
    with publisher(mosquitto) as link:
        with running(settings) as worker:
            send(link, ac, retain=True)
            wait_for(lambda: worker.ingestor.registry.known(device), 10, "birth")
            send(link, *blocks[:38])
            wait_for(lambda: _judged(worker, blocks[37]), 30, "first blocks")
            cooling = worker.ingestor.detectors.detectors(device)[0]
            assert not cooling.learning  # learned from 36 h of readings
        # the worker is down: its persistent session collects what comes meanwhile
        send(link, *blocks[38:], tel("other-1", 0))
    with running(settings) as worker:
        # restored from the checkpoint before any new message: no relearning
        restored = worker.ingestor.detectors.detectors(device)
        assert restored and not restored[0].learning
        wait_for(lambda: worker.ingestor.stats.telemetry == 3, 30, "missed messages")
        assert worker.ingestor.stats.duplicates == 0
    assert stored(settings.journal_path, device) == list(range(40))
    assert stored(settings.journal_path, "other-1") == [0]


@pytest.mark.parametrize("store", ["postgresql", "sqlite", None])
def test_a_moved_partition_resumes_from_the_shared_checkpoints(mosquitto, tmp_path, request, store):
    """A device's partition moves to a worker on another host (its own journal): with a
    checkpoint database the workers share (PostgreSQL across hosts; SQLite on one), the new
    owner resumes the device's learned detectors when the device's retained birth arrives;
    without one it must relearn."""
    urls = {
        "postgresql": lambda: request.getfixturevalue("pg_url"),
        "sqlite": lambda: f"sqlite:///{tmp_path / 'checkpoints.db'}",
    }
    shared = store is not None
    shared_db = {"checkpoint_db": urls[store]()} if shared else {}
    old = _settings(mosquitto, tmp_path, "old-host", **shared_db)
    new = _settings(mosquitto, tmp_path, "new-host", **shared_db)
    ac, blocks = _aircon_blocks(40)
    with publisher(mosquitto) as link:
        with running(old) as worker:
            send(link, ac, retain=True)
            wait_for(lambda: worker.ingestor.registry.known(ac.device), 10, "birth")
            send(link, *blocks[:38])
            wait_for(lambda: _judged(worker, blocks[37]), 30, "first blocks")
            assert not worker.ingestor.detectors.detectors(ac.device)[0].learning
        with running(new) as worker:
            assert len(worker.ingestor.registry) == 0  # its journal never saw the device
            wait_for(lambda: worker.ingestor.registry.known(ac.device), 10, "retained birth")
            send(link, *blocks[38:])
            wait_for(lambda: _judged(worker, blocks[39]), 30, "the next blocks")
            cooling = worker.ingestor.detectors.detectors(ac.device)[0]
            assert cooling.learning is not shared
            assert worker.ingestor.detectors.late_blocks == 0  # resumed in order, nothing lost
    assert stored(new.journal_path, ac.device) == [38, 39]


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_shared_checkpoints_are_replaced_and_read_back_in_bulk(tmp_path, request, backend):
    url = (
        request.getfixturevalue("pg_url")
        if backend == "postgresql"
        else f"sqlite:///{tmp_path / 'checkpoints.db'}"
    )
    store = SqlCheckpoints(url, "worker-a")
    devices = [f"ac-{k:05d}" for k in range(1_200)]  # more than one query's worth
    store.save_checkpoints(((d, d.encode()) for d in devices), 1.0)
    store.save_checkpoints([("ac-00007", b"newer")], 2.0)  # replaced, not added
    got = store.checkpoints([*devices, "never-saved"])
    assert len(got) == 1_200 and got["ac-00007"] == b"newer" and got["ac-01199"] == b"ac-01199"
    assert store.checkpoint("ac-00042") == b"ac-00042" and store.checkpoint("nope") is None
    store.close()
    again = SqlCheckpoints(url, "worker-b")  # the table is there already: created once
    assert again.checkpoint("ac-00007") == b"newer"
    again.close()


def test_two_workers_on_disjoint_partitions_split_the_fleet(mosquitto, tmp_path):
    low = _settings(mosquitto, tmp_path, "low", range(32))
    high = _settings(mosquitto, tmp_path, "high", range(32, 64))
    devices = [f"dev-{i:03d}" for i in range(40)]
    with publisher(mosquitto) as link, running(low) as w1, running(high) as w2:
        for d in devices:
            send(link, birth(d), retain=True)
        wait_for(lambda: len(w1.ingestor.registry) + len(w2.ingestor.registry) == 40, 20)
        for d in devices:
            send(link, *(tel(d, s) for s in range(3)))
        wait_for(lambda: w1.ingestor.stats.telemetry + w2.ingestor.stats.telemetry == 120, 30)
    mine = {d: protocol.partition(d) < 32 for d in devices}
    assert 0 < sum(mine.values()) < 40  # both halves have devices
    for d in devices:
        own, other = (low, high) if mine[d] else (high, low)
        assert stored(own.journal_path, d) == [0, 1, 2]  # no loss
        assert stored(other.journal_path, d) == []  # no overlap


def test_malformed_payloads_are_dead_lettered_and_the_worker_goes_on(mosquitto, tmp_path):
    settings = _settings(mosquitto, tmp_path, "w")
    good = tel("dev-1", 0)
    bad = [
        (protocol.topic("dev-1", "telemetry"), b"{oops"),
        (protocol.topic("dev-1", "telemetry"), b'{"v": 1, "device": "dev-1"}'),
        (protocol.topic("dev-1", "telemetry"), protocol.encode(tel("dev-2", 5))),  # wrong device
        (protocol.topic("dev-1", "event"), b"\xff\xfe"),
        ("qloop/v1/99/dev-1/telemetry", protocol.encode(good)),  # wrong partition
    ]
    with publisher(mosquitto) as link, running(settings) as worker:
        _ready(worker, link, "dev-1")
        for topic, payload in bad:
            link.publish(topic, payload)
        send(link, good)
        wait_for(lambda: worker.ingestor.stats.telemetry == 1, 20, "the good message")
        wait_for(lambda: worker.ingestor.stats.malformed == len(bad) - 1, 20, "dead letters")
        assert worker.stats()["malformed"] == len(bad) - 1
    j = Journal(settings.journal_path)
    letters = j.dead_letters()
    j.close()
    # the wrong partition is not subscribed to by anyone: it never reaches the worker
    assert sorted(p for _, _, p, _ in letters) == sorted(p for _, p in bad[:4])
    assert all(reason for *_, reason in letters)
    assert stored(settings.journal_path, "dev-1") == [0]


def test_a_duplicate_replay_is_stored_once(mosquitto, tmp_path):
    settings = _settings(mosquitto, tmp_path, "w")
    with publisher(mosquitto) as link, running(settings) as worker:
        _ready(worker, link, "dev-1")
        send(link, *(tel("dev-1", s) for s in range(5)))
        send(link, *(tel("dev-1", s) for s in range(5)))  # the edge replays after a lost ack
        wait_for(lambda: worker.ingestor.stats.duplicates == 5, 20, "the replay")
        assert worker.ingestor.stats.telemetry == 5
    assert stored(settings.journal_path, "dev-1") == [0, 1, 2, 3, 4]


def test_out_of_order_blocks_are_stored_and_fed_in_order(mosquitto, tmp_path):
    settings = _settings(mosquitto, tmp_path, "w")
    with publisher(mosquitto) as link, running(settings) as worker:
        _ready(worker, link, "dev-1")
        # live blocks first, then the backlog from an outage (store and forward)
        send(link, *(tel("dev-1", s) for s in (0, 1, 4, 5, 2, 3)))
        wait_for(lambda: worker.ingestor.stats.telemetry == 6, 20, "all blocks")
        bank = worker.ingestor.detectors
        assert bank.reordered_blocks == 2 and bank.late_blocks == 0
        # a block that comes after its gap was given up is stored, counted late, not fed
        send(link, *(tel("dev-1", s) for s in range(7, 7 + bank.reorder_messages + 1)))
        wait_for(lambda: worker.ingestor.stats.telemetry == 6 + bank.reorder_messages + 1, 20)
        send(link, tel("dev-1", 6))
        wait_for(lambda: bank.late_blocks == 1, 20, "the late block")
        newest = tel("dev-1", 7 + bank.reorder_messages).rows[-1][0]
        assert bank.last_ts("dev-1") == newest  # the late block did not move the detectors back
    assert stored(settings.journal_path, "dev-1") == list(range(7 + bank.reorder_messages + 1))


def test_a_checkpoint_in_another_format_is_discarded_not_fatal(tmp_path):
    """A worker must start even when its journal holds detector state it cannot read (written
    by another version): that device relearns instead."""
    journal = Journal(tmp_path / "journal.db")
    birth = protocol.Birth("ac-9", "air_conditioner", "KFR-35GW", "B1", "SN-9", "2.3.0", 60.0, 0.0)
    journal.add_birth("ac-9", protocol.encode(birth), 0.0)
    journal.save_checkpoint("ac-9", pickle.dumps(("qloop-detector-state-0", {})), 0.0)
    journal.close()
    worker = Worker(
        WorkerSettings(
            BrokerAddress(),
            range(64),
            db_url="",
            journal_path=str(tmp_path / "journal.db"),
            queue_size=100,
        )
    )
    try:
        worker._restore()
        assert "ac-9" not in worker.ingestor.detectors
    finally:
        worker.journal.close()


def test_a_birth_announcing_another_batch_does_not_move_the_unit_in_the_worker(
    mosquitto, tmp_path, caplog
):
    """The ticket database holds an announced identity for a person (issue 16); the worker
    keeps the recorded one too — in its registry (InfluxDB tags, the pooled batch test) — also
    after a restart, and takes an accepted change at the unit's next birth."""
    from cloud.ticketing.db import make_engine
    from cloud.ticketing.service import TicketService
    from contract.clock import utcnow

    db = f"sqlite:///{tmp_path / 'tickets.db'}"
    settings = _settings(mosquitto, tmp_path, "identity", db_url=db)
    forged = Birth("d-id", "thermometer", "M1", "EVIL-BATCH", "SN-d-id", "1.0", 60.0, 10.0)
    with publisher(mosquitto) as link, running(settings) as worker:
        _ready(worker, link, "d-id")
        assert worker.ingestor.registry.get("d-id").batch == "B1"
        # retained, as a unit's births are: the restart below must not get the first (B1) birth
        # back from the broker, which would withdraw the pending change before a person decides
        send(link, forged, retain=True)

        def kept() -> bool:  # the worker says so once its registry has the recorded identity
            return any("EVIL-BATCH" in r.getMessage() for r in caplog.records)

        wait_for(kept, 10, "the announced batch held")
        info = worker.ingestor.registry.get("d-id")
        assert (info.model, info.batch) == ("M1", "B1")
    service = TicketService(make_engine(db), utcnow)
    (pending,) = service.identity_changes(status="pending")
    with running(settings) as worker:  # its journal's latest birth says EVIL-BATCH
        assert worker.ingestor.registry.get("d-id").batch == "B1"
        service.decide_identity_change(pending["id"], "accept", actor="quality")
        with publisher(mosquitto) as link:
            send(link, forged)
            wait_for(
                lambda: worker.ingestor.registry.get("d-id").batch == "EVIL-BATCH",
                10,
                "the accepted change at the next birth",
            )
