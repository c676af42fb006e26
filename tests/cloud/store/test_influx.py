"""InfluxSink against real servers: every point arrives with its tags and fields, in batches,
after the server was down, and a full buffer drops the oldest points and counts them.

Each test runs against VictoriaMetrics (which speaks InfluxDB's v2 write API; started by the
fixture) and, when INFLUXDB_URL, INFLUXDB_TOKEN and INFLUXDB_ORG are set, against that InfluxDB 2
(read back with Flux). The expected points are worked out here from the messages themselves,
not with the sink's own line builder.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from influxdb_client import InfluxDBClient

from cloud.anomaly.bank import DetectorBank
from cloud.anomaly.base import Finding
from cloud.ingest.ingestor import Ingestor
from cloud.ingest.registry import DeviceInfo
from cloud.store.influx import InfluxSink, SinkStats
from cloud.store.journal import Journal
from cloud.store.readback import InfluxTarget
from contract import protocol
from contract.mqtt import InboundMessage
from contract.protocol import Birth, Event, Telemetry
from qloop.broker import free_port
from tests.helpers import wait_for
from tests.vm import HttpRelay, InfluxDB2, VictoriaMetrics

MEASUREMENTS = ("telemetry", "event", "finding")
# (measurement, sorted tag items, field, value, timestamp in ms)
Sample = tuple[str, tuple[tuple[str, str], ...], str, float, int]


class Backend:
    """What a test needs from a server: where to write, how to read back, how to take it away."""

    name: str
    url: str
    token = ""
    org = "qloop"
    bucket = "qloop"

    def samples(self, batch: str) -> list[Sample]:
        raise NotImplementedError

    def write_requests(self) -> int:
        raise NotImplementedError

    def down(self) -> None:
        raise NotImplementedError

    def up(self) -> None:
        raise NotImplementedError

    def read_target(self) -> InfluxTarget:
        """Where the API's evidence charts read this server (``cloud/store/readback.py``)."""
        return InfluxTarget(self.url, self.token, self.org, self.bucket)

    def settle(self) -> None:
        """Make what was written visible to queries (InfluxDB: at once)."""

    def sink(self, **kw: object) -> InfluxSink:
        kw = {"backoff_s": 0.05, "max_backoff_s": 0.2, **kw}
        return InfluxSink(self.url, self.token, self.org, self.bucket, **kw)  # type: ignore[arg-type]


class VmBackend(Backend):
    name = "victoria-metrics"

    def __init__(self, vm: VictoriaMetrics) -> None:
        self.vm = vm
        self.url = vm.url

    def samples(self, batch: str) -> list[Sample]:
        out = []
        for measurement in MEASUREMENTS:
            match = f'{{__name__=~"{measurement}_.+", batch="{_label(batch)}"}}'
            for series in self.vm.export(match):
                labels = dict(series["metric"])
                field = labels.pop("__name__")[len(measurement) + 1 :]
                tags = tuple(sorted(labels.items()))
                for v, t in zip(series["values"], series["timestamps"], strict=True):
                    out.append((measurement, tags, field, float(v), t))
        return out

    def write_requests(self) -> int:
        return self.vm.influx_write_requests()

    def settle(self) -> None:
        self.vm.flush()

    def down(self) -> None:
        self.vm.stop()

    def up(self) -> None:
        self.vm.start()


class Influx2Backend(Backend):
    """A real InfluxDB 2 behind a counting relay (the relay is what goes down)."""

    name = "influxdb2"

    def __init__(self, server: InfluxDB2) -> None:
        self.server = server
        self.relay = HttpRelay(server.url)
        self.url, self.token, self.org = self.relay.url, server.token, server.org
        self.bucket = server.bucket

    def samples(self, batch: str) -> list[Sample]:
        flux = (
            f'from(bucket: "{self.bucket}") |> range(start: 0)'
            f' |> filter(fn: (r) => r.batch == "{_flux_str(batch)}")'
        )
        out = []
        with InfluxDBClient(url=self.server.url, token=self.token, org=self.org) as client:
            for table in client.query_api().query(flux):
                for r in table.records:
                    tags = tuple(
                        sorted(
                            (k, v)
                            for k, v in r.values.items()
                            if not k.startswith("_") and k not in ("result", "table")
                        )
                    )
                    ms = (r.get_time() - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
                        milliseconds=1
                    )
                    out.append((r.get_measurement(), tags, r.get_field(), r.get_value(), ms))
        return out

    def read_target(self) -> InfluxTarget:
        return InfluxTarget(self.server.url, self.token, self.org, self.bucket)

    def write_requests(self) -> int:
        return self.relay.requests("POST", "/api/v2/write")

    def down(self) -> None:
        self.relay.close()

    def up(self) -> None:
        self.relay.open()


def _label(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


_flux_str = _label  # Flux string literals escape the same two characters


@pytest.fixture(params=["victoria-metrics", "influxdb2"])
def backend(request) -> Iterator[Backend]:
    if request.param == "victoria-metrics":
        yield VmBackend(request.getfixturevalue("victoria_metrics"))
        return
    b = Influx2Backend(request.getfixturevalue("influxdb2"))
    yield b
    b.relay.close()


@dataclass
class Fleet:
    """Messages for a few devices, with awkward tag values, nulls and an event."""

    batch: str
    t0: float

    def births(self) -> list[Birth]:
        return [
            Birth(
                "ac-1", "air_conditioner", "KFR 35,GW=x", self.batch, "S1", "2.3.0", 1.0, self.t0
            ),
            Birth("ac-2", "air_conditioner", 'KFR"26\\', self.batch, "S2", "fw\n3", 1.0, self.t0),
        ]

    def telemetry(self, device: str, seq: int, n: int = 30) -> Telemetry:
        fields = ("ts", "supply_c", "return_c", "noise_db", "current_a")
        rows = []
        for i in range(n):
            ts = self.t0 + seq * n + i + 0.1  # fractions of a second must survive exactly
            noise = None if i % 7 == 3 else 40.0 + (i % 5) * 0.25  # a sensor gave no value
            rows.append((ts, 16.0 + i / 100, 25 + seq, noise, 4.2))
        return Telemetry(device, seq, fields, tuple(rows))


def _tags(info_tags: dict[str, str]) -> tuple[tuple[str, str], ...]:
    # line protocol cannot carry a control character in a tag: the sink writes U+FFFD instead
    clean = {k: "".join("\ufffd" if ord(c) < 32 else c for c in v) for k, v in info_tags.items()}
    return tuple(sorted(clean.items()))


def expected_telemetry(b: Birth, t: Telemetry) -> list[Sample]:
    tags = _tags({"device": b.device, "model": b.model, "batch": b.batch, "firmware": b.firmware})
    ts_at = t.fields.index("ts")
    return [
        ("telemetry", tags, f, float(row[i]), round(row[ts_at] * 1000))
        for row in t.rows
        for i, f in enumerate(t.fields)
        if i != ts_at and row[i] is not None
    ]


def expected_finding(info: DeviceInfo, f: Finding) -> list[Sample]:
    tags = _tags(
        {"device": info.device, "model": info.model, "batch": info.batch, "fault": f.fault}
    )
    fields = {"score": f.score, "active": 1.0 if f.active else 0.0, **f.evidence}
    ms = round(f.ts * 1000)
    return [("finding", tags, k, float(v), ms) for k, v in fields.items() if math.isfinite(v)]


def _inbound(m: protocol.Message) -> InboundMessage:
    return InboundMessage(
        protocol.topic(m.device, protocol.kind_of(m)), protocol.encode(m), False, False
    )


def _wait_sent(sink: InfluxSink, points: int) -> SinkStats:
    sink.flush()
    wait_for(lambda: sink.stats().written >= points, 30, f"{points} points written")
    return sink.stats()


def _run_batch() -> str:
    return f"T{uuid.uuid4().hex[:12]}"  # a batch of our own: the InfluxDB may be shared


def _recent() -> float:
    # InfluxDB refuses points older than its bucket's retention: write near the present
    return float(int(time.time()) - 3600)


def test_every_point_of_an_ingested_fleet_arrives_with_its_tags_and_fields(backend, tmp_path):
    fleet = Fleet(_run_batch(), _recent())
    sink = backend.sink(batch_points=50)
    findings: list[tuple[Finding, DeviceInfo]] = []

    def on_finding(f: Finding, info: DeviceInfo) -> None:
        findings.append((f, info))
        sink.add_finding(info, f)

    journal = Journal(tmp_path / "journal.db")
    ingest = Ingestor(journal, DetectorBank(), on_finding, on_points=sink.add, clock=time.time)
    births = {b.device: b for b in fleet.births()}
    messages: list[protocol.Message] = list(births.values())
    blocks = [fleet.telemetry(d, seq) for seq in range(4) for d in births]
    messages += blocks
    over = Event("ac-1", 4, fleet.t0 + 200.5, "overcurrent", 12.3, 10.0)
    quiet = Event("ac-2", 4, fleet.t0 + 201.0, "door_open", None, None)  # no field to write
    messages += [over, quiet, blocks[0]]  # the copy of a block is stored and written once
    for m in messages:
        ingest.handle(_inbound(m))
    journal.commit()

    expected = [s for t in blocks for s in expected_telemetry(births[t.device], t)]
    b = births["ac-1"]
    event_tags = _tags(
        {"device": "ac-1", "model": b.model, "batch": b.batch, "kind": "overcurrent"}
    )
    expected += [
        ("event", event_tags, k, v, round(over.ts * 1000))
        for k, v in (("value", 12.3), ("limit", 10.0))
    ]
    for f, info in findings:
        expected += expected_finding(info, f)
    assert any(f.fault == "overcurrent" for f, _ in findings)

    lines = sum(len(t.rows) for t in blocks) + 1 + len(findings)
    stats = _wait_sent(sink, lines)
    assert (stats.written, stats.empty, stats.dropped, stats.failed_writes) == (lines, 1, 0, 0)
    got = backend.samples(fleet.batch)
    assert Counter(got) == Counter(expected)  # every point exactly once, with every field
    sink.close()
    journal.close()


def _lines(batch: str, t0: float, n: int) -> tuple[list[Telemetry], Birth, list[Sample]]:
    fleet = Fleet(batch, t0)
    birth = fleet.births()[0]
    blocks = [fleet.telemetry(birth.device, seq, n=1) for seq in range(n)]
    return blocks, birth, [s for t in blocks for s in expected_telemetry(birth, t)]


def _info(b: Birth) -> DeviceInfo:
    return DeviceInfo(b.device, b.product, b.model, b.batch, b.serial, b.firmware, born=True)


def test_points_go_in_requests_of_batch_points(backend):
    batch_points, n = 40, 40 * 3 + 7
    blocks, birth, expected = _lines(_run_batch(), _recent(), n)
    sink = backend.sink(batch_points=batch_points, flush_interval_s=None)
    before = backend.write_requests()
    for t in blocks:  # full batches go while we add; the tail goes on flush()
        sink.add(_info(birth), t)
    stats = _wait_sent(sink, n)
    assert stats.requests == math.ceil(n / batch_points) == 4 and stats.failed_writes == 0
    # the server's own count (VictoriaMetrics updates it a moment after answering)
    wait_for(lambda: backend.write_requests() - before >= 4, 30, "the server to count")
    assert backend.write_requests() - before == 4
    assert Counter(backend.samples(birth.batch)) == Counter(expected)
    sink.close()


def test_points_survive_the_server_being_down_and_arrive_once(backend):
    blocks, birth, expected = _lines(_run_batch(), _recent(), 25)
    sink = backend.sink(batch_points=10, flush_interval_s=None)
    backend.down()
    for t in blocks:
        sink.add(_info(birth), t)
    sink.flush()
    wait_for(lambda: sink.stats().failed_writes >= 2, 30, "two failed attempts")  # retried
    stats = sink.stats()
    assert stats.written == 0 and stats.buffered + stats.in_flight == 25 and stats.dropped == 0
    backend.up()
    stats = _wait_sent(sink, 25)
    assert (stats.written, stats.buffered, stats.dropped) == (25, 0, 0)
    assert Counter(backend.samples(birth.batch)) == Counter(expected)  # none twice, none lost
    sink.close()


def test_a_full_buffer_drops_the_oldest_points_and_counts_them(backend):
    blocks, birth, _ = _lines(_run_batch(), _recent(), 25)
    # batches larger than what is added: nothing is sent before flush(), so the count is exact
    sink = backend.sink(batch_points=100, max_buffered=10, flush_interval_s=None)
    backend.down()
    for t in blocks:
        sink.add(_info(birth), t)
    sink.flush()
    wait_for(lambda: sink.stats().failed_writes >= 1, 30, "a failed attempt")
    stats = sink.stats()
    assert stats.written == 0 and stats.dropped == 15
    backend.up()
    stats = _wait_sent(sink, 10)
    assert (stats.written, stats.dropped, stats.buffered) == (10, 15, 0)
    newest = [s for t in blocks[-10:] for s in expected_telemetry(birth, t)]
    assert Counter(backend.samples(birth.batch)) == Counter(newest)
    sink.close()


def test_points_left_at_close_with_no_server_are_counted_not_lost_silently():
    port = free_port()  # nothing listens there
    sink = InfluxSink(f"http://127.0.0.1:{port}", "", "o", "b", backoff_s=0.05, timeout_s=2)
    blocks, birth, _ = _lines("B1", 1_716_000_000.0, 3)
    for t in blocks:
        sink.add(_info(birth), t)
    stats = sink.close()
    assert (stats.written, stats.dropped, stats.buffered) == (0, 3, 0)
    assert stats.failed_writes >= 1


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="batch_points"):
        InfluxSink("http://127.0.0.1:1", "", "o", "b", batch_points=0)
    with pytest.raises(ValueError, match="backoff"):
        InfluxSink("http://127.0.0.1:1", "", "o", "b", backoff_s=2, max_backoff_s=1)
