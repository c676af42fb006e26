"""A cloud worker: subscribe to some partitions, ingest, detect, and hand findings to ticketing.

Threads: paho's network thread only puts received messages on a bounded queue (when the queue is
full it blocks, so the socket stops being read and the broker holds the rest: backpressure, not
unbounded memory). The worker thread takes messages in batches, ingests them, commits the
journal and only then acknowledges them to the broker (manual PUBACK), so a message the broker
considers delivered is on disk. The MQTT session is persistent (clean_session false, a client id
fixed by the partition set), so a restarted worker receives what it missed. With
``receiver="process"`` (``qloop cloud run``'s default) paho runs in a child process
(:mod:`contract.mqtt_process`), so receiving overlaps processing (BENCHMARKS.md, issue 17,
fourth part); ``WorkerSettings`` itself keeps ``"thread"`` for workers built in process.

Findings are handed to ticketing after the journal commit of the batch they come from (before
its acknowledgement), and a checkpoint is written only between batches, after its findings were
handed on. A worker killed at any point therefore restarts from its checkpoint, feeds its
detectors the messages journaled since (``cloud/ingest/catch_up.py``) and re-derives exactly
the findings it had handed on, which the ticket database takes once (``intake.py``); findings
whose messages were never journaled were never handed on, and come again with the broker's
redelivery.

With shared checkpoints (``checkpoint_db``, for partitions that move between hosts) a message
is acknowledged only once a checkpoint covers it (a checkpoint is written when ``ack_window``
messages wait, when the worker is idle, and every ``checkpoint_every_s``): a worker on another
host that takes the partitions over restores the checkpoints and receives from the broker
exactly the messages they have not seen, so it too re-derives the same findings.

Stopping (SIGTERM, ``qloop cloud run``) drains: paho's thread hands over nothing more (what
arrives is not acknowledged, so the broker sends it again to the next session), what is queued
is processed, journaled and acknowledged while still connected, detector state is checkpointed,
InfluxDB gets what is buffered, and only then does the worker disconnect.

Observability: with ``on_snapshot`` the worker thread hands over its counters
(:meth:`Worker.snapshot`, a new dict each time) every ``snapshot_every_s``; whoever serves them
(``cloud/worker_metrics.py``) reads only that dict, never the worker's live state.
"""

from __future__ import annotations

import gc
import logging
import math
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

from sqlalchemy.exc import OperationalError

from cloud.anomaly.bank import DetectorBank
from cloud.anomaly.base import Finding
from cloud.anomaly.clock import ClockCheck
from cloud.anomaly.envelope import Envelope
from cloud.anomaly.events import EventFindings
from cloud.anomaly.peers import PeerFinding
from cloud.anomaly.pooled import BatchFinding
from cloud.ingest.catch_up import catch_up
from cloud.ingest.ingestor import Ingestor
from cloud.ingest.pooling import BatchPooling
from cloud.ingest.registry import DeviceInfo
from cloud.store.checkpoints import CheckpointStore, SqlCheckpoints
from cloud.store.dead_letters import CountingJournal
from cloud.worker_settings import WorkerSettings
from contract import protocol
from contract.clock import utcnow
from contract.errors import QloopError
from contract.handoff import Handoff
from contract.mqtt import InboundMessage, MqttLink
from contract.mqtt_process import ProcessLink

log = logging.getLogger(__name__)


class DatabaseUnavailable(QloopError):
    """The ticket (or shared checkpoint) database stopped answering: the worker stops, with
    what it could not hand on unacknowledged, so its restart gets those messages again."""


def _log_changes(changes: list | None) -> None:
    for change in changes or ():
        log.info("ticket %s", change)


class Worker:
    def __init__(
        self,
        settings: WorkerSettings,
        *,
        on_finding: Callable[[Finding, DeviceInfo], None] | None = None,
        on_snapshot: Callable[[Mapping[str, object]], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._on_snapshot = on_snapshot
        self._findings_by_fault: Counter[str] = Counter()
        # findings of the batch in hand: handed on once its messages are journaled (_hand_on)
        self._found: deque[tuple[Finding, DeviceInfo]] = deque()
        self._lost_handed: dict[str, int] = {}  # lost-seq counts the ticket database has
        self._acked = self._checkpoint_writes = 0
        self._pruned = 0  # journal messages deleted past the retention
        # with shared checkpoints, processed messages wait here for a checkpoint to cover them
        self._unacked: list[InboundMessage] = []
        # lost seqs as last counted: (seqs, devices, when to count again at the earliest)
        self._lost_counted: tuple[int, int, float] | None = None
        self._draining = threading.Event()  # set: paho's thread hands over nothing more
        self._unavailable = False  # the ticket or checkpoint database stopped answering
        Path(settings.journal_path).parent.mkdir(parents=True, exist_ok=True)
        self.journal = CountingJournal(settings.journal_path, checkpoint_thread=True)
        self.checkpoints: CheckpointStore = self.journal
        if settings.checkpoint_db:
            self.checkpoints = SqlCheckpoints(settings.checkpoint_db, settings.mqtt_client_id())
        self.tickets = None
        self._extra_sink = on_finding
        if settings.db_url:
            from cloud.ticketing.db import make_engine
            from cloud.ticketing.service import TicketService

            self.tickets = TicketService(
                make_engine(settings.db_url), utcnow, settings.ticket_policy
            )
        self.influx = None
        if settings.influx_url:
            from cloud.store.influx import InfluxSink

            self.influx = InfluxSink(
                settings.influx_url,
                settings.influx_token or "",
                settings.influx_org or "",
                settings.influx_bucket or "",
            )
        self.ingestor = Ingestor(
            self.journal,
            DetectorBank(generic=settings.generic_detectors),
            self._finding,
            on_points=self.influx.add if self.influx else None,
            on_birth=self._birth,
            events=EventFindings(envelope=_envelope(settings)),
            clock_check=(
                None
                if settings.clock_tolerance_s is None
                else ClockCheck(ahead_s=settings.clock_tolerance_s)
            ),
            clock=clock,
        )
        # the pooled batch test: batches whose units drift together (cloud/ingest/pooling.py)
        self.pooling = None
        if self.tickets is not None:
            bank, registry = self.ingestor.detectors, self.ingestor.registry
            self.pooling = BatchPooling(bank, registry, self._batch_finding)
        self._queue: Handoff[InboundMessage] = Handoff(settings.queue_size)
        self._stop = threading.Event()
        self.link = (ProcessLink if settings.receiver == "process" else MqttLink)(
            settings.mqtt_client_id(),
            settings.broker,
            clean_session=False,
            subscriptions=protocol.subscriptions(settings.partitions),
            on_message=self._enqueue,
            manual_ack=True,
            max_inflight=1000,
        )

    def _enqueue(self, msg: InboundMessage) -> None:
        """paho's thread: queue ``msg``; once draining, drop it unacknowledged (redelivered)."""
        if not self._draining.is_set():
            self._queue.put(msg, give_up=self._draining.is_set)

    def _birth(self, info: DeviceInfo) -> None:
        if info.device not in self.ingestor.detectors:  # new here: a moved partition's device
            self._restore_device(info.device)
        if self.tickets is None:
            return
        from cloud.ticketing.intake import DeviceRecord

        # event time throughout: the first/last reading, else the birth's own timestamp
        born = info.birth_ts if info.birth_ts is not None else self.clock()
        self.tickets.register_device(
            DeviceRecord(
                info.device,
                info.product,
                info.model,
                info.batch,
                info.serial,
                info.firmware,
                first_seen_ts=info.first_ts if info.first_ts is not None else born,
                last_seen_ts=info.last_ts if info.last_ts is not None else born,
            )
        )
        self._keep_identities([info.device])

    def _keep_identities(self, devices: Sequence[str] | None = None) -> None:
        """A birth that announced another product, model or batch than the unit has waits for a
        person in the ticket database (``cloud/ticketing/identity.py``): until it is accepted the
        worker too keeps the recorded identity, which tags the unit's points and places it in
        the pooled batch test. An accepted change takes effect at the unit's next birth (or the
        worker's next start)."""
        if self.tickets is None:
            return
        registry = self.ingestor.registry
        if devices is None:
            devices = [i.device for i in registry if i.born]
        for device, recorded in self.tickets.device_identities(devices).items():
            info = registry.get(device)
            announced = (info.product, info.model, info.batch)
            if announced != recorded:
                info.product, info.model, info.batch = recorded
                log.warning(
                    "%s announced %s; it stays %s until a person accepts the change"
                    " (/api/v1/devices/changes)",
                    device,
                    "/".join(announced),
                    "/".join(recorded),
                )

    def _finding(self, f: Finding, info: DeviceInfo) -> None:
        if self.pooling is not None:  # a unit the peer test moved: its ticket says by how much
            f = self.pooling.annotate(f)
        self._findings_by_fault[f.fault] += 1
        self._found.append((f, info))

    def _hand_on(self) -> None:
        """Hand the findings found so far to InfluxDB and ticketing, once the messages they come
        from are journaled: a finding in the ticket database is then always one a restart
        re-derives from the journal (``cloud/ingest/catch_up.py``), and the ticket database
        takes it at most once. A finding that cannot be handed on stays first in line (and no
        checkpoint is written past it): the worker stops, and its restart derives it again."""
        while self._found:
            f, info = self._found[0]
            if self.influx is not None:
                self.influx.add_finding(info, f)
            if self.tickets is not None:
                judged = self._judged_until([info.device])
                if judged:
                    _log_changes(self.tickets.touch_devices(judged))
                _log_changes(self.tickets.record_finding(f))
            if self._extra_sink is not None:
                self._extra_sink(f, info)
            self._found.popleft()

    def _batch_finding(self, f: BatchFinding | PeerFinding) -> None:
        """A batch that stands out by its units' shifts, or whose units are short of their
        model's other batches: its batch ticket opens or strengthens."""
        if self.tickets is not None:
            _log_changes(self.tickets.record_batch_finding(f))

    def _judged_until(self, devices: Iterable[str]) -> dict[str, float]:
        """How far in event time the detectors have judged each device's data. This, not the
        newest reading received, is what "seen" means to fix verification: a unit's clearing
        may still sit in the reorder buffer while later readings have already arrived."""
        bank = self.ingestor.detectors
        out = {}
        for d in devices:
            ts = bank.last_ts(d)
            if math.isfinite(ts):
                out[d] = ts
        return out

    def _restore(self) -> None:
        """Detector state of every device this worker's journal knows, from the checkpoints."""
        if self.pooling is not None:
            self.pooling.load(self.journal)
        saved = self.checkpoints.checkpoints(info.device for info in self.ingestor.registry)
        restored = {d: self._restore_state(d, state) for d, state in saved.items()}
        n = sum(restored.values())
        stale = len(restored) - n
        if n or stale:
            log.info("restored detector state of %d devices (%d discarded)", n, stale)
        # caught up from the journal: every device but one whose checkpoint was discarded (it
        # relearns from now on rather than re-judge its whole past with other detectors)
        known = [i for i in self.ingestor.registry if restored.get(i.device) is not False]
        caught = catch_up(self.journal, self.ingestor.detectors, self.ingestor.events, known)
        for f, info in caught.findings:
            self._finding(f, info)
        self._hand_on()
        if caught.messages:
            log.info(
                "fed again %d journaled messages of %d devices past their checkpoints"
                " (%d findings, each taken once)",
                caught.messages,
                caught.devices,
                len(caught.findings),
            )

    def _restore_device(self, device: str) -> bool | None:
        """As :meth:`_restore_state` for the device's saved state; None when none is saved."""
        state = self.checkpoints.checkpoint(device)
        return None if state is None else self._restore_state(device, state)

    def _restore_state(self, device: str, state: bytes) -> bool:
        """True: restored; False: a checkpoint the detectors cannot read (relearns)."""
        try:
            self.ingestor.detectors.restore(device, state)
        except ValueError as e:  # another version's format: relearn rather than not start
            log.warning("discarding a checkpoint the detectors cannot read: %s", e)
            return False
        return True

    def _save_states(self) -> None:
        """Checkpoint the devices whose state changed, then acknowledge what waited for it."""
        self._hand_on()  # a checkpoint never gets ahead of the findings handed on
        bank = self.ingestor.detectors
        states = ((d, bank.snapshot(d)) for d in bank.dirty())
        self.checkpoints.save_checkpoints(
            ((d, s) for d, s in states if s is not None), self.clock()
        )
        self._checkpoint_writes += 1
        self.journal.commit()
        self._ack(self._unacked)
        self._unacked = []

    def _ack(self, messages: list[InboundMessage]) -> None:
        self.link.ack_many(messages)
        self._acked += len(messages)

    def checkpoint(self) -> None:
        self._save_states()
        if self.pooling is not None:  # in the worker's own journal: its partitions' batches
            self.pooling.save(self.journal, self.clock())
        if self.tickets is not None:
            lost = self._lost_changes()
            # event time moves on for every unit: fix verification windows can run out
            _log_changes(
                self.tickets.touch_devices(
                    self._judged_until(i.device for i in self.ingestor.registry if i.born), lost
                )
            )
            self._lost_handed.update(lost)
        if self.influx is not None:
            log.info("influx: %s", self.influx.stats())
        if self.settings.journal_retention_s is not None:  # a slice a time: ingest goes on
            self._pruned += self.journal.prune(self.clock() - self.settings.journal_retention_s)
        self.journal.commit()

    def process_batch(self, timeout: float) -> int:
        """Take up to ``batch_size`` messages (those queued, waiting at most ``batch_wait_s`` for
        more), ingest them, judge them all at once, commit, then acknowledge them."""
        try:
            first = self._queue.get(timeout=timeout)
        except queue.Empty:
            if self._unacked:  # idle: nothing to wait for before acknowledging
                self._save_states()
            return 0
        batch = [first]
        deadline = time.monotonic() + self.settings.batch_wait_s
        while len(batch) < self.settings.batch_size:
            try:
                batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        for msg in batch:
            try:
                self.ingestor.receive(msg)
            except Exception:  # a bug on one message must not stop the fleet's ingest
                log.exception("failed to ingest a message on %s", msg.topic)
                self.journal.dead_letter(
                    msg.topic, msg.payload, "internal error while ingesting", self.clock()
                )
        # the telemetry journaled with one statement; a failure to store stops here, unacknowledged
        self.ingestor.store()
        try:
            self.ingestor.judge()  # the detectors, once over the whole batch
        except Exception:  # the readings are stored; a detector bug must not stop the ingest
            log.exception("failed to judge a batch of %d messages", len(batch))
        self.ingestor.check_offline()
        if self.tickets is not None and self.ingestor.judged:
            # keep every unit's event time current for ticketing, not only those with findings:
            # batch statistics weigh units by their time in the field, and fix verification
            # windows run out in the units' own time (only units whose judged time moved: for
            # the others the ticket database has it already)
            _log_changes(self.tickets.touch_devices(self.ingestor.judged))
        self.ingestor.judged.clear()
        if self.pooling is not None:
            self.pooling.judged(self.ingestor.processed)
        self.ingestor.processed.clear()
        self.journal.commit()
        self._hand_on()
        if self.influx is not None:
            self.influx.flush()
        if self.settings.checkpoint_db:
            # another host may take these partitions over from the shared checkpoints: the
            # broker keeps, for the next owner, every message the checkpoints have not seen
            self._unacked += batch
            if len(self._unacked) >= self.settings.ack_window:
                self._save_states()
        else:  # a restart here catches up from this journal (cloud/ingest/catch_up.py)
            self._ack(batch)
        return len(batch)

    def _lost_changes(self) -> dict[str, int]:
        """Lost-seq counts that differ from what the ticket database was last handed."""
        lost = self._count_lost()
        gone = {d: 0 for d, n in self._lost_handed.items() if n and d not in lost}
        return {**gone, **{d: n for d, n in lost.items() if self._lost_handed.get(d) != n}}

    def stats(self) -> dict[str, int]:
        """The worker's counters: ingest, detector order, lost seqs, queue depth."""
        lost = self._count_lost()  # also what the next snapshots show
        return {
            **self._counters(),
            "lost_seqs": sum(lost.values()),
            "devices_with_lost_seqs": len(lost),
        }

    def _counters(self) -> dict[str, int]:
        bank = self.ingestor.detectors
        return {
            **asdict(self.ingestor.stats),
            # protection trips beyond the models' rated envelope: kept, no finding (envelope.py)
            "beyond_envelope": sum(self.ingestor.events.beyond.values()),
            "late_blocks": bank.late_blocks,
            "reordered_blocks": bank.reordered_blocks,
            "devices": len(self.ingestor.registry),
            "queued": self._queue.qsize(),
            **self._batch_test_counters(),
        }

    def _batch_test_counters(self) -> dict[str, int]:
        """The batch tests' findings, and the units the peer level test moved up to their
        peers or ended the learning of (``cloud/ingest/pooling.py``); none without them."""
        p = self.pooling
        if p is None:
            return {}
        return {
            "batch_findings": p.findings,
            "peer_moves": p.moved,
            "peer_early_ends": p.ended_early,
        }

    def _count_lost(self) -> dict[str, int]:
        """Each device's lost seqs now; the totals are kept for the snapshots (see
        ``WorkerSettings.lost_every_s``)."""
        started = time.monotonic()
        lost = self.ingestor.lost_seqs()
        now = time.monotonic()
        wait = max(self.settings.lost_every_s, 100 * (now - started))
        self._lost_counted = (sum(lost.values()), len(lost), now + wait)
        return lost

    def snapshot(self, *, recount: bool = False) -> dict[str, object]:
        """Everything the metrics show, as a new dict (built on the worker thread); lost seqs
        as last counted (every ``lost_every_s``, or now with ``recount``)."""
        counted = self._lost_counted
        if recount or counted is None or time.monotonic() >= counted[2]:
            lost = self._count_lost()
            counted = (sum(lost.values()), len(lost), 0.0)
        return {
            **self._counters(),
            "lost_seqs": counted[0],
            "devices_with_lost_seqs": counted[1],
            "queue_size": self.settings.queue_size,
            "acked": self._acked,
            "checkpoint_writes": self._checkpoint_writes,
            "journal_pruned": self._pruned,
            "dead_letters": dict(self.journal.dead_letter_counts),
            "findings_by_fault": dict(self._findings_by_fault),
            "influx": asdict(self.influx.stats()) if self.influx is not None else None,
        }

    def readiness(self) -> str | None:
        """None when ready (connected, subscribed, not stopping), else why not (any thread)."""
        if self._draining.is_set() or self._stop.is_set():
            return "stopping"
        if not self.link.connected:
            return "not connected to the broker"
        if not self.link.wait_subscribed(0):
            return "subscriptions not acknowledged yet"
        return None

    def start(self) -> None:
        self._keep_identities()
        self._restore()
        # what is alive now (modules, settings, the restored fleet) lives as long as the worker:
        # the cyclic collector stops walking it, so its full passes under load take milliseconds
        # instead of a tenth of a second (BENCHMARKS.md, 2026-12-02 issue 17, fourth part);
        # garbage first, so none of it is kept
        gc.collect()
        gc.freeze()
        self.link.start()

    def run(self, duration_s: float | None = None) -> None:
        self.start()
        started = time.monotonic()
        try:
            self._run(started, duration_s)
        except OperationalError as e:
            self._unavailable = True
            reason = str(e.orig if e.orig is not None else e).strip().splitlines()[0]
            raise DatabaseUnavailable(
                f"the ticket database (or the checkpoint database) stopped answering: {reason};"
                " the worker stops without acknowledging what it could not hand on: restart it"
                " when the database is back (the broker keeps those messages for it)"
            ) from None
        finally:
            self.close()

    def _run(self, started: float, duration_s: float | None) -> None:
        last_cp = last_stats = last_snapshot = started
        while not self._stop.is_set():
            self.process_batch(timeout=0.2)
            now = time.monotonic()
            if self._on_snapshot and now - last_snapshot >= self.settings.snapshot_every_s:
                self._on_snapshot(self.snapshot())
                last_snapshot = now
            if now - last_cp >= self.settings.checkpoint_every_s:
                self.checkpoint()
                last_cp = now
            if now - last_stats >= self.settings.stats_every_s:
                log.info("worker %s: %s", self.link.client_id, self.stats())
                last_stats = now
            if duration_s is not None and now - started >= duration_s:
                break

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Drain (see the module docstring), then disconnect and close the stores."""
        self._draining.set()
        if not self._unavailable:  # nothing more can be handed on: what is queued comes again
            log.info("stopping: draining %d queued messages", self._queue.qsize())
            while self.process_batch(timeout=0.0):  # journaled and acknowledged, still connected
                pass
            self.checkpoint()
        if self.influx is not None:
            self.influx.close()
        self.link.close()
        if self._on_snapshot is not None:
            self._on_snapshot(self.snapshot(recount=True))
        if isinstance(self.checkpoints, SqlCheckpoints):
            self.checkpoints.close()
        self.journal.close()


def _envelope(settings: WorkerSettings) -> Envelope:
    """The models' rated envelope as the settings give it (T1 where they say nothing)."""
    given: dict[str, float] = {}
    if settings.rated_max_outdoor_c is not None:
        given["max_outdoor_c"] = settings.rated_max_outdoor_c
    if settings.rated_max_indoor_c is not None:
        given["max_indoor_c"] = settings.rated_max_indoor_c
    return Envelope(by_model=dict(settings.rated_max_outdoor_models), **given)
