"""A worker that stopped without a checkpoint (SIGKILL) catches its detectors up from its journal
(``cloud/ingest/catch_up.py``) and re-derives the same findings, which the ticket database takes
once. In-process, against a real Mosquitto; the real-process failover is ``test_failover.py``."""

from __future__ import annotations

import dataclasses
import pickle
import time

from sqlalchemy import select

from cloud.anomaly.bank import DetectorBank
from cloud.anomaly.base import Block, Finding
from cloud.anomaly.events import EventFindings
from cloud.ingest.catch_up import catch_up
from cloud.ingest.registry import Registry
from cloud.store.journal import Journal
from cloud.ticketing.models import FindingRecord
from cloud.worker import Worker
from cloud.worker_settings import WorkerSettings
from contract import protocol
from contract.mqtt import BrokerAddress
from contract.protocol import Event, Telemetry
from tests.cloud.test_worker import _aircon_blocks, _judged, _settings, publisher, send


def _process_until(worker: Worker, done, what: str, timeout: float = 30.0) -> None:
    """Run the worker's batches on this thread until ``done()``; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        worker.process_batch(timeout=0.2)


def _killed_after(broker, settings, messages, ac) -> list[Finding]:
    """Run a worker over ``messages`` and leave it as a SIGKILL would: journaled and
    acknowledged, but no checkpoint written; the findings it handed on."""
    found: list[Finding] = []
    worker = Worker(settings, on_finding=lambda f, _: found.append(f))
    worker.start()
    assert worker.link.wait_connected(10) and worker.link.wait_subscribed(10)
    last = [m for m in messages if isinstance(m, Telemetry)][-1]
    with publisher(broker) as link:
        send(link, ac, retain=True)
        send(link, *messages)
        _process_until(
            worker,
            lambda: _judged(worker, last) and worker.ingestor.stats.events == 1,
            "the messages judged",
        )
    worker.link.close()  # and no close(): the checkpoint it would write is never written
    worker.journal.close()
    return found


def test_a_worker_killed_before_its_checkpoint_resumes_from_its_journal(mosquitto, tmp_path):
    tickets = f"sqlite:///{tmp_path / 'tickets.db'}"
    settings = _settings(mosquitto, tmp_path, "w", db_url=tickets, checkpoint_every_s=3600.0)
    ac, blocks = _aircon_blocks(46)
    frozen = [  # the supply-air sensor freezes after 38 h: sensor_stuck findings to re-derive
        Telemetry(b.device, b.seq, b.fields, tuple((*r[:3], 15.5, *r[4:]) for r in b.rows))
        if b.seq >= 38
        else b
        for b in blocks
    ]
    event = Event(ac.device, len(frozen), frozen[-1].rows[-1][0] + 1, "overcurrent", 14.0, 10.0)
    before = _killed_after(mosquitto, settings, [*frozen, event], ac)
    assert {f.fault for f in before} >= {"sensor_stuck", "overcurrent"}
    worker = Worker(settings)
    try:
        assert worker.ingestor.detectors.detectors(ac.device) == []  # no checkpoint to restore
        worker._restore()
        detectors = worker.ingestor.detectors.detectors(ac.device)
        assert detectors and not detectors[0].learning, "caught up: learned, not relearning"
        assert worker.ingestor.detectors.last_ts(ac.device) == frozen[-1].rows[-1][0]
        with worker.tickets.engine.connect() as conn:
            rows = conn.execute(
                select(FindingRecord.fault, FindingRecord.ts, FindingRecord.active)
            ).all()
    finally:
        worker.link.close()
        worker.journal.close()
    assert sorted(rows) == sorted((f.fault, f.ts, f.active) for f in before), "each once"


def test_catch_up_feeds_only_what_the_checkpoint_has_not_judged(tmp_path):
    ac, blocks = _aircon_blocks(6)
    journal = Journal(tmp_path / "journal.db")
    journal.add_birth(ac.device, protocol.encode(ac), 0.0)
    for b in blocks:
        t0, t1 = b.rows[0][0], b.rows[-1][0]
        journal.add_message(b.device, b.seq, "telemetry", t0, t1, 0.0, protocol.encode(b))
    journal.commit()
    checkpointed = DetectorBank()
    for b in blocks[:4]:
        checkpointed.update("air_conditioner", Block.from_rows(b.device, b.fields, b.rows), b.seq)
    bank = DetectorBank()
    bank.restore(ac.device, checkpointed.snapshot(ac.device))
    registry = Registry()
    registry.apply_birth(ac)
    caught = catch_up(journal, bank, EventFindings(), list(registry))
    journal.close()
    assert (caught.messages, caught.devices) == (2, 1)  # the two blocks after the checkpoint
    assert bank.last_ts(ac.device) == blocks[-1].rows[-1][0]
    assert bank.late_blocks == 0


def test_a_device_whose_checkpoint_is_discarded_relearns_rather_than_replays(tmp_path):
    """A checkpoint another version wrote cannot be read: the device relearns from its next
    readings, as before, instead of having its whole journaled past judged again."""
    ac, blocks = _aircon_blocks(3)
    path = tmp_path / "journal.db"
    journal = Journal(path)
    journal.add_birth(ac.device, protocol.encode(ac), 0.0)
    for b in blocks:
        t0, t1 = b.rows[0][0], b.rows[-1][0]
        journal.add_message(b.device, b.seq, "telemetry", t0, t1, 0.0, protocol.encode(b))
    journal.save_checkpoint(ac.device, pickle.dumps(("qloop-detector-state-0", {})), 0.0)
    journal.close()
    worker = Worker(
        WorkerSettings(BrokerAddress(), range(64), db_url="", journal_path=str(path), queue_size=9)
    )
    try:
        worker._restore()
        assert ac.device not in worker.ingestor.detectors
    finally:
        worker.journal.close()


def test_a_worker_on_another_host_gets_what_the_shared_checkpoints_have_not_seen(
    mosquitto, tmp_path
):
    """With shared checkpoints a message is acknowledged once a checkpoint covers it: a worker
    on another host (its own journal) that takes the partitions over restores the checkpoints,
    receives from the broker what they have not seen, and re-derives the same findings."""
    shared = f"sqlite:///{tmp_path / 'shared.db'}"
    old = _settings(mosquitto, tmp_path, "old", db_url=shared, checkpoint_db=shared)
    ac, blocks = _aircon_blocks(46)
    frozen = [
        Telemetry(b.device, b.seq, b.fields, tuple((*r[:3], 15.5, *r[4:]) for r in b.rows))
        if b.seq >= 38
        else b
        for b in blocks
    ]
    found: list[Finding] = []
    worker = Worker(old, on_finding=lambda f, _: found.append(f))
    worker.start()
    assert worker.link.wait_connected(10) and worker.link.wait_subscribed(10)
    with publisher(mosquitto) as link:
        send(link, ac, retain=True)
        send(link, *frozen[:36])
        _process_until(worker, lambda: _judged(worker, frozen[35]), "36 h judged")
        worker.checkpoint()  # learned, checkpointed, acknowledged
        send(link, *frozen[36:])
        _process_until(worker, lambda: _judged(worker, frozen[-1]), "46 h judged")
    assert {f.fault for f in found} == {"sensor_stuck"}
    worker.link.close()  # the host is gone: no close(), its journal is never seen again
    worker.journal.close()
    new = dataclasses.replace(old, journal_path=str(tmp_path / "new-host.db"))
    worker = Worker(new)
    worker.start()
    try:
        assert worker.link.wait_connected(10) and worker.link.wait_subscribed(10)
        # the broker's redelivery brings what the checkpoint has not seen
        _process_until(worker, lambda: _judged(worker, frozen[-1]), "the redelivered hours")
        detectors = worker.ingestor.detectors.detectors(ac.device)
        assert not detectors[0].learning, "resumed from the shared checkpoint"
        worker._hand_on()
        with worker.tickets.engine.connect() as conn:
            rows = conn.execute(
                select(FindingRecord.fault, FindingRecord.ts, FindingRecord.active)
            ).all()
    finally:
        worker.close()
    assert sorted(rows) == sorted((f.fault, f.ts, f.active) for f in found), "the same, once"
