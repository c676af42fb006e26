"""After a restart: feed the detectors what the journal holds past each device's checkpoint.

A worker checkpoints its detectors now and then (``cloud/worker.py``), but journals and
acknowledges every micro-batch. After a crash, the messages journaled since a device's last
checkpoint will not come from the broker again (they were acknowledged, or they are refused as
duplicates by the journal's key), so a worker that only restored the checkpoint would judge the
device's next readings against a state that never saw them: its findings would differ from the
ones it had already handed to the ticket database before the crash (orphans), or repeat them at
other times. :func:`catch_up` feeds those messages — telemetry with readings after the time
the checkpoint had judged up to (all of them for a device with no checkpoint), in seq order —
so the detectors reach the state they had, and re-derive exactly the findings of the replayed
readings. The ticket database takes each finding at most once (``cloud/ticketing/intake.py``),
so handing them over again changes nothing that was already there.

Events are fed too: they fill their seq in the detectors' order and a safety event is judged
again (the event findings' hour window is not checkpointed, so a replayed event may give a
finding the first run held back; it is a real event of the unit either way).

A worker that takes over another host's partitions has no journal of their past: it restores
the shared checkpoints (``--checkpoint-db``), and since a worker with shared checkpoints
acknowledges a message only once a checkpoint covers it (``cloud/worker.py``), the broker
redelivers to it everything those checkpoints have not seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from cloud.anomaly.bank import DetectorBank
from cloud.anomaly.base import Block, Finding
from cloud.anomaly.events import EventFindings
from cloud.ingest.registry import DeviceInfo
from cloud.store.journal import Journal
from contract import protocol
from contract.faults import FAULTS
from contract.protocol import DecodeError, Event, Telemetry

_CHUNK = 500  # messages fed between judgements (bounds the blocks waiting in memory)


@dataclass
class CaughtUp:
    """What :func:`catch_up` did: the messages fed again and the findings they gave."""

    messages: int = 0
    devices: int = 0
    findings: list[tuple[Finding, DeviceInfo]] = field(default_factory=list)


def catch_up(
    journal: Journal,
    bank: DetectorBank,
    events: EventFindings,
    devices: Iterable[DeviceInfo],
) -> CaughtUp:
    """Feed ``bank`` (restored from its checkpoints) each device's journaled messages past what
    it has judged; the findings, each with its device, in the order the detectors gave them."""
    out = CaughtUp()
    known: dict[str, DeviceInfo] = {}
    fed = 0
    for info in devices:
        if not info.born:  # held back from the detectors until its birth: nothing was judged
            continue
        rows = journal.messages_after(info.device, bank.last_ts(info.device))
        if rows:
            out.devices += 1
            known[info.device] = info
        for seq, kind, body in rows:
            try:
                m = protocol.decode(protocol.topic(info.device, kind), body)
            except DecodeError:  # journaled messages were decoded once: not expected
                continue
            out.messages += 1
            if isinstance(m, Telemetry) and m.rows:
                bank.feed(info.product, Block.from_rows(m.device, m.fields, m.rows), seq)
                fed += 1
            elif isinstance(m, Event):
                bank.fill(m.device, info.product, seq)
                if m.kind in FAULTS:
                    passed = events.update(m.device, m.kind, m.ts, m.value, m.limit)
                    if passed is not None:
                        out.findings.append((passed, info))
            if fed >= _CHUNK:
                out.findings.extend((f, known[f.device]) for f in bank.flush())
                fed = 0
    out.findings.extend((f, known[f.device]) for f in bank.flush())
    return out
