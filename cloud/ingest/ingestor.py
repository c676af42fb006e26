"""From received MQTT message to stored readings and findings, with no MQTT in sight.

:meth:`Ingestor.handle` decodes one message and acts on it:

- anything that does not follow the contract is a dead letter: kept with its reason, counted,
  and otherwise ignored; so is telemetry or an event stamped at times that cannot be true
  (``cloud/anomaly/clock.py``), which moves no event time and gives its unit a ``clock_skew``
  finding;
- a birth updates the device registry (and is kept, so a restarted worker knows the fleet);
- telemetry and events are de-duplicated by (device, seq) — in memory first, then by the
  journal's key — and stored as received; then telemetry goes to the detectors and events that
  name a known fault (e.g. ``overcurrent``) become findings directly, at most one per device
  and kind an hour (``cloud/anomaly/events.py``: a finding counts the events it stands for).

Every message takes a seq of its device, and the detectors feed blocks in seq order (a block
after a gap waits, ``cloud/anomaly/bank.py``). A seq that will never bring readings fills its gap at
once: an event, a telemetry block with no rows, and a dead letter whose topic and ``seq`` are
still readable (:func:`protocol.salvage_seq`) — otherwise the device's detection would wait for
it until the reorder buffer gives up.

The worker takes messages in micro-batches: :meth:`Ingestor.receive` for each, then
:meth:`Ingestor.store` and :meth:`Ingestor.judge` once. A telemetry block is decoded straight
into one float array (:mod:`cloud.ingest.decode`), checked for its times and de-duplicated in
memory when received, and waits there; :meth:`Ingestor.store` journals every waiting block with
one statement (:meth:`Journal.add_messages`) and then does the rest of the above for each, in
the order received. Any other message (a birth, an event, a status, a dead letter) stores the
waiting blocks first and is then handled at once, so the order of everything a device sends is
the order it was received in, and a safety event's finding is handed on when it is received.
:meth:`Ingestor.judge` (which stores first) runs each detector once over the readings of every
device in the batch (``cloud/anomaly/columns.py``). :meth:`Ingestor.handle` is the three for
one message.

Telemetry from a device whose birth has not arrived yet is stored at once but held back from
the detectors and InfluxDB (which need its model and batch) until the birth comes; births are
retained, so that is normally a moment. Past ``hold_limit`` messages the device is processed
with model and batch ``unknown``.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from cloud.anomaly.bank import DetectorBank
from cloud.anomaly.base import Finding
from cloud.anomaly.clock import ClockCheck
from cloud.anomaly.events import EventFindings
from cloud.anomaly.offline import OfflineWatch
from cloud.ingest.decode import Readings, decode_readings
from cloud.ingest.dedup import SeqTracker
from cloud.ingest.registry import DeviceInfo, Registry
from cloud.store.journal import Journal
from contract import protocol
from contract.faults import FAULTS
from contract.mqtt import InboundMessage
from contract.protocol import Birth, DecodeError, Event, Message, Status, Telemetry

log = logging.getLogger(__name__)

FindingSink = Callable[[Finding, DeviceInfo], None]
PointSink = Callable[[DeviceInfo, Telemetry | Event], None]


class _Gap(NamedTuple):
    """A seq of ``device`` that brings no readings and no event (a dead letter, an empty block)."""

    device: str
    seq: int


class _Received(NamedTuple):
    """A telemetry block received and new to memory, waiting for :meth:`Ingestor.store`."""

    readings: Readings
    t0: float  # the event time it covers
    t1: float
    at: float  # when it was received (the worker's clock)


@dataclass(slots=True)
class IngestStats:
    messages: int = 0
    births: int = 0
    telemetry: int = 0
    readings: int = 0
    events: int = 0
    duplicates: int = 0
    malformed: int = 0
    held: int = 0
    clock_skew: int = 0  # messages refused for times that cannot be true (also dead letters)
    findings: int = 0


class Ingestor:
    def __init__(
        self,
        journal: Journal,
        detectors: DetectorBank,
        on_finding: FindingSink,
        *,
        on_points: PointSink | None = None,
        on_birth: Callable[[DeviceInfo], None] | None = None,
        hold_limit: int = 100,
        offline: OfflineWatch | None = None,
        events: EventFindings | None = None,
        clock_check: ClockCheck | None = None,
        clock: Callable[[], float],
    ) -> None:
        self.journal = journal
        self.detectors = detectors
        self.on_finding = on_finding
        self.on_points = on_points
        self.on_birth = on_birth
        self.hold_limit = hold_limit
        self.clock = clock
        self.offline = OfflineWatch() if offline is None else offline
        self.events = EventFindings() if events is None else events
        self.clock_check = ClockCheck() if clock_check is None else clock_check
        self.processed: set[str] = set()  # devices whose data reached the detectors lately
        # devices whose judged event time moved lately, and to when (the caller clears it)
        self.judged: dict[str, float] = {}
        self.registry = Registry()
        self.stats = IngestStats()
        self._seen: dict[str, SeqTracker] = defaultdict(SeqTracker)
        self._held: dict[str, list[Readings | Event | _Gap]] = {}
        self._received: list[_Received] = []  # waiting for store()
        self._no_birth: set[str] = set()  # held past the limit: processed as unknown from now on
        for body in journal.births():  # the fleet as this worker last knew it
            with contextlib.suppress(DecodeError):
                self.registry.apply_birth(protocol.decode_birth(body))
        # lost seqs hold across restarts: each device's count carries on from the journal's
        for device, (lost, newest) in journal.seq_spans().items():
            self._seen[device].resume(lost, newest)

    def handle(self, msg: InboundMessage) -> None:
        """Take one message and judge it: its findings are handed on before this returns."""
        self.receive(msg)
        self.judge()

    def receive(self, msg: InboundMessage) -> None:
        """Take one message: a telemetry block is decoded, checked and de-duplicated in memory,
        then waits for :meth:`store`; any other message is handled at once (after storing what
        waits), so that a safety event's finding is handed on now. The detectors judge the
        readings at the next :meth:`judge`, once for many messages of many devices."""
        self.stats.messages += 1
        try:
            m = _decode(msg)
        except DecodeError as e:
            self.store()
            self.stats.malformed += 1
            self.journal.dead_letter(msg.topic, msg.payload, e.reason, self.clock())
            # not marked seen: should an intact copy of this seq still come, it is processed
            named = protocol.salvage_seq(msg.topic, msg.payload)
            if named is not None:
                self._route(_Gap(*named))
            return
        if isinstance(m, Readings):
            self._telemetry(m)
            return
        self.store()
        if isinstance(m, Event):
            self._event(m, msg.payload)
        elif isinstance(m, Birth):
            self._birth(m, msg.payload)
        elif isinstance(m, Status):
            self.registry.get(m.device).online = m.online

    def store(self) -> None:
        """Journal the telemetry blocks received since the last call (one statement; committed
        with the journal's next commit) and put them in order for the detectors, in the order
        they were received."""
        received, self._received = self._received, []
        if not received:
            return
        new = self.journal.add_messages(
            (r.readings.device, r.readings.seq, "telemetry", r.t0, r.t1, r.at, r.readings.payload)
            for r in received
        )
        for r, fresh in zip(received, new, strict=True):
            if not fresh:
                self.stats.duplicates += 1  # seen before this worker's memory began
                continue
            try:
                self._accepted(r)
            except Exception:  # a bug on one message must not stop the others
                log.exception("failed to ingest a message of %s", r.readings.device)
                self.journal.dead_letter(
                    protocol.topic(r.readings.device, "telemetry"),
                    r.readings.payload,
                    "internal error while ingesting",
                    self.clock(),
                )

    def _birth(self, b: Birth, body: bytes) -> None:
        self.stats.births += 1
        info = self.registry.apply_birth(b)
        now = self.clock()
        self.journal.add_birth(b.device, body, now)
        self.offline.born(b.device, b.ts, arrived=now)
        if self.on_birth is not None:
            self.on_birth(info)
        for m in self._held.pop(b.device, []):
            self._process(info, m)

    def _accept(self, device: str, seq: int, kind: str, t0: float, t1: float, body: bytes) -> bool:
        if not self._seen[device].add(seq):
            self.stats.duplicates += 1
            return False
        if not self.journal.add_message(device, seq, kind, t0, t1, self.clock(), body):
            self.stats.duplicates += 1  # seen before this worker's memory began
            return False
        for f in self.clock_check.accepted(device, t1):
            self._emit(self.registry.get(device), f)
        return True

    def _telemetry(self, r: Readings) -> None:
        if not len(r):
            self.store()
            if self._seen[r.device].add(r.seq):
                self._route(_Gap(r.device, r.seq))
            return
        t0, t1 = r.span()
        now = self.clock()
        if not self.clock_check.believable(t0, t1, now):  # what reason() would refuse, or
            times = r.times()  # finite times whose sum overflows (then reason() says None)
            why = self.clock_check.reason(times, now)
            if why is not None:
                self.store()
                self._refuse(r.device, r.seq, "telemetry", times, r.payload, why, now)
                return
            t0, t1 = min(times), max(times)
        if not self._seen[r.device].add(r.seq):
            self.stats.duplicates += 1
            return
        self._received.append(_Received(r, t0, t1, now))

    def _accepted(self, r: _Received) -> None:
        """A stored telemetry block: as :meth:`_accept` and :meth:`_event` after the journal."""
        device = r.readings.device
        for f in self.clock_check.accepted(device, r.t1):
            self._emit(self.registry.get(device), f)
        self.stats.telemetry += 1
        self.stats.readings += len(r.readings.values)
        self.registry.saw(device, r.t0, r.t1)
        self._route(r.readings, r.t0, r.t1)

    def _refused(self, device: str, seq: int, kind: str, times: list[float], body: bytes) -> bool:
        """Whether the message's times cannot be true (see ``cloud/anomaly/clock.py``); such a
        message is kept as a dead letter, moves no time, fills its seq, and gives the unit a
        ``clock_skew`` finding stamped at its last believed event time."""
        now = self.clock()
        why = self.clock_check.reason(times, now)
        if why is None:
            return False
        self._refuse(device, seq, kind, times, body, why, now)
        return True

    def _refuse(
        self,
        device: str,
        seq: int,
        kind: str,
        times: list[float],
        body: bytes,
        why: str,
        now: float,
    ) -> None:
        self.stats.clock_skew += 1
        self.journal.dead_letter(protocol.topic(device, kind), body, why, now)
        info = self.registry.get(device)
        at = info.last_ts if info.last_ts is not None else now
        for f in self.clock_check.refused(device, times, now, at):
            self._emit(info, f)
        self._route(_Gap(device, seq))

    def _event(self, e: Event, body: bytes) -> None:
        if self._refused(e.device, e.seq, "event", [e.ts], body):
            return
        if not self._accept(e.device, e.seq, "event", e.ts, e.ts, body):
            return
        self.stats.events += 1
        self._route(e, e.ts, e.ts)

    def _route(self, m: Readings | Event | _Gap, t0: float | None = None, t1: float = 0.0) -> None:
        """``t0``..``t1``: the event time the message covers (computed once, on accept; None for
        a gap, which says nothing of when the device was last heard)."""
        if t0 is not None:
            times = m.values[:, m.fields.index("ts")] if isinstance(m, Readings) else None
            now = self.clock()
            for f in self.offline.seen(m.device, t1, t1 - t0, now, m.seq, times):
                self._emit(self.registry.get(m.device), f)
        info = self.registry.born(m.device)
        if info is not None or m.device in self._no_birth:
            self._process(info or self.registry.get(m.device), m)
            return
        held = self._held.setdefault(m.device, [])
        held.append(m)
        self.stats.held += 1
        if len(held) > self.hold_limit:  # no birth is coming: go on with what is known
            self._no_birth.add(m.device)
            for h in self._held.pop(m.device):
                self._process(self.registry.get(m.device), h)

    def _process(self, info: DeviceInfo, m: Readings | Event | _Gap) -> None:
        if isinstance(m, _Gap):
            self.detectors.fill(m.device, info.product, m.seq)
            return
        self.processed.add(m.device)
        if isinstance(m, Readings):
            if self.on_points is not None:
                self.on_points(info, m.telemetry())
            self.detectors.feed(info.product, m.block(), m.seq)
            return
        if self.on_points is not None:
            self.on_points(info, m)
        # an event takes a seq too: the detectors' reorder buffer must not wait for it
        self.detectors.fill(m.device, info.product, m.seq)
        if m.kind in FAULTS:  # a safety fault waits for no batch
            passed = self.events.update(
                m.device, m.kind, m.ts, m.value, m.limit, info.model, m.extra
            )
            if passed is not None:
                self._emit(info, passed)

    def judge(self) -> None:
        """Store what waits (:meth:`store`), then run the detectors over the readings received
        since the last call, every device at once, and hand on their findings (each device's in
        the order of its blocks). :attr:`judged` gets the devices whose judged event time moved
        (of those in :attr:`processed`), and to when."""
        self.store()
        bank = self.detectors
        before = [(d, bank.last_ts(d)) for d in self.processed]
        for f in bank.flush():
            self._emit(self.registry.get(f.device), f)
        for d, ts in before:
            now = bank.last_ts(d)
            if now > ts:
                self.judged[d] = now

    def lost_seqs(self) -> dict[str, int]:
        """Per device, the seqs between the first and the newest it sent that no accepted
        message had (lost on the way, or refused: see the dead letters); devices with none are
        left out. "Nothing lost" is this being empty. It holds across restarts
        (:meth:`SeqTracker.resume`): the journal's gaps when this worker started, the gap
        between the journal's newest seq and the first this worker heard (lost while no worker
        ran), and the gaps since; a late copy that fills a gap from before the start is stored,
        but that gap stays counted until the next start recounts the journal."""
        return {d: n for d, t in self._seen.items() if (n := t.missing)}

    def check_offline(self) -> None:
        """Report devices that fell silent (call now and then, e.g. once per batch)."""
        for f in self.offline.check(now=self.clock()):
            self._emit(self.registry.get(f.device), f)

    def _emit(self, info: DeviceInfo, f: Finding) -> None:
        self.stats.findings += 1
        self.on_finding(f, info)


def _decode(msg: InboundMessage) -> Readings | Message:
    """A telemetry block as :class:`Readings` (one float array), anything else as the contract's
    message; :class:`DecodeError` for what breaks the contract."""
    t = protocol.parse_topic(msg.topic)
    if t.kind == "telemetry":
        return decode_readings(msg.payload, t.device)
    return protocol.decode(msg.topic, msg.payload)
