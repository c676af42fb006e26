"""Evidence charts read back from InfluxDB (``cloud/store/readback.py``): the points the worker
wrote come back exactly as the journal holds them, the chart drawn from either store is the same,
and a store that cannot be read gives a reason on the page instead of an error.

Runs against VictoriaMetrics (export API, started by the fixture) and, when INFLUXDB_URL,
INFLUXDB_TOKEN and INFLUXDB_ORG are set, against that InfluxDB 2 (Flux, the shipped query
``device_field``) — the ``backend`` fixture of ``tests/cloud/store/test_influx.py``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cloud.anomaly.bank import DetectorBank
from cloud.ingest.ingestor import Ingestor
from cloud.store.journal import Journal
from cloud.store.readback import (
    FluxReader,
    InfluxTarget,
    ReadbackError,
    VictoriaMetricsReader,
    detect_dialect,
    open_reader,
)
from cloud.ticketing.web.evidence import build_chart, chart_for_ticket
from qloop.broker import free_port
from qloop.settings import Settings
from tests.cloud.store.test_influx import (  # noqa: F401 - backend is a fixture
    Backend,
    Fleet,
    _inbound,
    _recent,
    _run_batch,
    _wait_sent,
    backend,
)

FIELDS = ("supply_c", "return_c", "noise_db", "current_a")


@pytest.fixture
def written(
    backend: Backend,  # noqa: F811 - the fixture imported above
    tmp_path,
) -> Iterator[tuple[Backend, Journal, Fleet]]:
    """A small fleet ingested the worker's way: into a journal and through the sink."""
    fleet = Fleet(_run_batch(), _recent())
    sink = backend.sink(batch_points=100)
    journal = Journal(tmp_path / "journal.db")
    ingest = Ingestor(
        journal, DetectorBank(), lambda f, i: None, on_points=sink.add, clock=time.time
    )
    births = fleet.births()
    blocks = [fleet.telemetry(b.device, seq) for seq in range(6) for b in births]
    for m in [*births, *blocks, blocks[3]]:  # a copy arrives too: stored and written once
        ingest.handle(_inbound(m))
    journal.commit()
    _wait_sent(sink, sum(len(t.rows) for t in blocks))
    sink.close()
    backend.settle()
    yield backend, journal, fleet
    journal.close()


def _ms(points: list) -> list[tuple[int, float]]:
    return [(round(t * 1000), v) for t, v in points if v is not None]


def test_every_point_reads_back_as_the_journal_holds_it(written):
    server, journal, fleet = written
    reader = open_reader(server.read_target())
    try:
        lo, hi = fleet.t0 - 60, fleet.t0 + 3600
        for device in ("ac-1", "ac-2"):
            for field in FIELDS:
                want = _ms(journal.series(device, field, lo, hi))
                assert want, (device, field)
                assert _ms(reader.series(device, field, lo, hi)) == want
        # the range is inclusive at both ends, as the journal's
        t = journal.series("ac-1", "supply_c", lo, hi)[10][0]
        assert _ms(reader.series("ac-1", "supply_c", t, t)) == _ms(
            journal.series("ac-1", "supply_c", t, t)
        )
        assert reader.series("ac-9", "supply_c", lo, hi) == []  # no such device: no points
        assert reader.series("ac-1", "no_such_field", lo, hi) == []
    finally:
        reader.close()


def test_the_chart_from_influxdb_is_the_chart_from_the_journal(written):
    server, journal, fleet = written
    devices = [
        {"device": d, "first_ts": fleet.t0 + 100, "onset_ts": fleet.t0, "last_ts": fleet.t0 + 150}
        for d in ("ac-1", "ac-2")
    ]
    ticket = {"fault": "noise_rise", "evidence": {"devices": devices}}
    from_influx = chart_for_ticket(ticket, None, influx=server.read_target())
    from_journal = build_chart("noise_rise", devices, journal)
    assert from_influx.svg is not None and from_influx.svg == from_journal.svg
    assert from_influx.note.endswith("from InfluxDB") and "2 affected unit(s)" in from_influx.note
    # ΔT: return minus supply at the same instants, from two fields read separately
    cooling = chart_for_ticket(
        {**ticket, "fault": "cooling_decline"}, None, None, server.read_target()
    )
    assert cooling.svg == build_chart("cooling_decline", devices, journal).svg


def test_the_dialect_is_asked_of_the_server(victoria_metrics):
    target = InfluxTarget(victoria_metrics.url)
    assert detect_dialect(target) == "victoriametrics"
    assert isinstance(open_reader(target), VictoriaMetricsReader)
    flux = open_reader(InfluxTarget(victoria_metrics.url, dialect="flux"))
    assert isinstance(flux, FluxReader)  # as configured, whatever the server says
    with pytest.raises(ReadbackError, match="InfluxDB at"):
        flux.series("ac-1", "supply_c", 0.0, 1.0)  # VictoriaMetrics answers no Flux
    flux.close()


class _NotInflux(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = b"<html>a web server</html>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def not_influx() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotInflux)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_store_that_cannot_be_read_gives_a_reason_not_an_error(not_influx):
    ticket = {
        "fault": "noise_rise",
        "evidence": {"devices": [{"device": "ac-1", "first_ts": 1e9, "last_ts": 1e9}]},
    }
    down = InfluxTarget(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    chart = chart_for_ticket(ticket, None, influx=down)
    assert (
        chart.svg is None and "could not be read" in chart.note and "did not answer" in chart.note
    )
    with pytest.raises(ReadbackError, match="neither InfluxDB nor VictoriaMetrics"):
        detect_dialect(InfluxTarget(not_influx))
    chart = chart_for_ticket(ticket, None, influx=InfluxTarget(not_influx))
    assert chart.svg is None and "set the query dialect" in chart.note
    assert "no store is configured" in chart_for_ticket(ticket, None).note


def test_the_journal_stands_in_when_influxdb_cannot_be_read(tmp_path):
    fleet = Fleet(_run_batch(), _recent())
    path = tmp_path / "journal.db"
    journal = Journal(path)
    ingest = Ingestor(journal, DetectorBank(), lambda f, i: None, clock=time.time)
    for m in [*fleet.births(), *(fleet.telemetry("ac-1", seq) for seq in range(4))]:
        ingest.handle(_inbound(m))
    journal.commit()
    journal.close()
    devices = [{"device": "ac-1", "first_ts": fleet.t0 + 60, "last_ts": fleet.t0 + 90}]
    ticket = {"fault": "noise_rise", "evidence": {"devices": devices}}
    down = InfluxTarget(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    chart = chart_for_ticket(ticket, str(path), influx=down)
    assert chart.svg is not None and chart.svg == chart_for_ticket(ticket, str(path)).svg
    assert "from the journal" in chart.note and "InfluxDB could not be read" in chart.note


def test_settings_name_the_store_the_charts_read():
    assert Settings(journal="j.db").influx_target() is None
    s = Settings(
        influx_url="http://tsdb:8086", influx_token="t0k", influx_org="qa", influx_query="flux"
    )
    assert s.influx_target() == InfluxTarget("http://tsdb:8086", "t0k", "qa", "qloop", "flux")


def test_reading_is_bounded_by_the_timeout():
    # a server that accepts the connection and never answers must not hang the page
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        target = InfluxTarget(
            f"http://127.0.0.1:{sock.getsockname()[1]}", dialect="victoriametrics", timeout_s=0.5
        )
        with pytest.raises(ReadbackError, match="did not answer"):
            VictoriaMetricsReader(target).series("ac-1", "supply_c", 0.0, 1.0)
    finally:
        sock.close()
