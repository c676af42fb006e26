"""A worker's Prometheus metrics, liveness and readiness, on a port of its own
(``qloop cloud run --metrics-port``).

The worker thread publishes its counters as a fresh dict every second
(:meth:`cloud.worker.Worker.snapshot` through :meth:`Snapshots.publish`: one reference swapped,
so a reader sees one whole snapshot or the one before, never half of each); the HTTP thread
only reads that dict (:class:`WorkerCollector`), never the ingestor's or the detectors' state,
which the worker thread changes without locks. A scrape therefore shows counts at most about a
second old; ``qloop_worker_snapshot_age_seconds`` says how old.

Endpoints (no token: the numbers are counts, with no device id, payload or ticket in them; bind
the port to an address only the scraper reaches, ``--host``):

- ``/metrics``: Prometheus text. Counters since the process started (``_total``): messages,
  readings, duplicates, dead letters by kind of reason (``cloud/store/dead_letters.py``),
  findings by fault, acknowledgements, checkpoint writes, safety trips beyond their model's rated
  envelope (``cloud/anomaly/envelope.py``), the batch tests' findings and the units the peer
  level test moved or ended the learning of (``cloud/anomaly/peers.py``), InfluxDB points
  written, dropped and
  rejected and write retries; gauges: lost seqs and the devices with any, queue depth and size,
  devices known, InfluxDB points buffered; and the process's own (CPU, memory, open files).
- ``/healthz``: liveness, 200 while the process answers (also while it drains: a probe must not
  kill a worker that is finishing its queue).
- ``/readyz``: readiness, 200 once connected to the broker with every subscription
  acknowledged; 503 with the reason before that, after a disconnect and while stopping.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

Snapshot = Mapping[str, Any]

# snapshot key → (metric, help): counters of the ingest since the process started
_COUNTERS = (
    ("messages", "qloop_worker_messages", "MQTT messages taken in"),
    ("births", "qloop_worker_births", "birth messages taken in"),
    ("telemetry", "qloop_worker_telemetry_blocks", "telemetry blocks accepted"),
    ("readings", "qloop_worker_readings", "readings (telemetry rows) accepted"),
    ("events", "qloop_worker_events", "events accepted"),
    ("duplicates", "qloop_worker_duplicates", "messages already seen (device, seq), dropped"),
    ("held", "qloop_worker_held", "messages held until their device's birth came"),
    ("acked", "qloop_worker_acked", "messages acknowledged to the broker after the commit"),
    ("checkpoint_writes", "qloop_worker_checkpoint_writes", "detector checkpoints written"),
    ("journal_pruned", "qloop_worker_journal_pruned", "journal messages deleted past retention"),
    ("late_blocks", "qloop_worker_late_blocks", "blocks that came after their gap was given up"),
    ("reordered_blocks", "qloop_worker_reordered_blocks", "blocks put back in seq order"),
    (
        "beyond_envelope",
        "qloop_worker_beyond_envelope_events",
        "safety trips beyond their model's rated envelope: stored, no finding",
    ),
    (
        "batch_findings",
        "qloop_worker_batch_findings",
        "findings of the batch tests (pooled, peers)",
    ),
    (
        "peer_moves",
        "qloop_worker_peer_moves",
        "units' baselines the peer level test moved up to their model's other batches'",
    ),
    (
        "peer_early_ends",
        "qloop_worker_peer_early_ends",
        "units whose learning ended early: named short of their peers while they learned",
    ),
)
_GAUGES = (
    ("lost_seqs", "qloop_worker_lost_seqs", "seqs between devices' first and newest that never"
     " came in an accepted message"),
    ("devices_with_lost_seqs", "qloop_worker_devices_with_lost_seqs",
     "devices with at least one lost seq"),
    ("queued", "qloop_worker_queue_depth", "received messages waiting for the worker thread"),
    ("queue_size", "qloop_worker_queue_size", "how many may wait at most"),
    ("devices", "qloop_worker_devices", "devices this worker knows"),
)  # fmt: skip
# InfluxDB sink stats key → (metric, help); ``buffered`` is a gauge, the rest counters
_INFLUX = (
    ("written", "qloop_worker_influx_points_written", "points InfluxDB acknowledged"),
    ("dropped", "qloop_worker_influx_points_dropped", "points dropped from the full buffer"),
    ("rejected", "qloop_worker_influx_points_rejected", "points InfluxDB refused as malformed"),
    ("failed_writes", "qloop_worker_influx_write_retries", "write requests failed and retried"),
)


class Snapshots:
    """The latest snapshot the worker thread published (one reference: read whole or not)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._latest: tuple[Snapshot, float] | None = None

    def publish(self, snapshot: Snapshot) -> None:
        """The worker thread's side: ``snapshot`` must not be changed afterwards."""
        self._latest = (snapshot, self._clock())

    def latest(self) -> tuple[Snapshot, float] | None:
        """(snapshot, its age in seconds), or None before the first."""
        latest = self._latest
        return None if latest is None else (latest[0], self._clock() - latest[1])


class WorkerCollector(Collector):
    """Prometheus metrics from the latest snapshot (nothing before the first)."""

    def __init__(self, snapshots: Snapshots) -> None:
        self._snapshots = snapshots

    def collect(self) -> Iterator[Metric]:
        latest = self._snapshots.latest()
        if latest is None:
            return
        snap, age = latest
        for key, name, doc in _COUNTERS:
            yield CounterMetricFamily(name, doc, value=snap.get(key, 0))
        for key, name, doc in _GAUGES:
            yield GaugeMetricFamily(name, doc, value=snap.get(key, 0))
        yield _labelled(
            CounterMetricFamily, "qloop_worker_dead_letters",
            "messages refused and kept as dead letters, by kind of reason", "reason",
            snap.get("dead_letters", {}),
        )  # fmt: skip
        yield _labelled(
            CounterMetricFamily, "qloop_worker_findings", "detector findings handed on, by fault",
            "fault", snap.get("findings_by_fault", {}),
        )  # fmt: skip
        influx = snap.get("influx")
        if influx is not None:
            for key, name, doc in _INFLUX:
                yield CounterMetricFamily(name, doc, value=influx[key])
            yield GaugeMetricFamily(
                "qloop_worker_influx_points_buffered",
                "points waiting to be written",
                value=influx["buffered"] + influx["in_flight"],
            )
        yield GaugeMetricFamily(
            "qloop_worker_snapshot_age_seconds", "age of the counters shown", value=age
        )


def _labelled(
    kind: type[CounterMetricFamily] | type[GaugeMetricFamily],
    name: str,
    doc: str,
    label: str,
    values: Mapping[str, float],
) -> Metric:
    family = kind(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


class MetricsServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` on ``host:port`` (port 0: any free one, see
    :attr:`port`), served from a thread of its own until :meth:`close`."""

    def __init__(
        self, host: str, port: int, snapshots: Snapshots, readiness: Callable[[], str | None]
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(WorkerCollector(snapshots))
        ProcessCollector(registry=self.registry)
        self._readiness = readiness
        self._http = ThreadingHTTPServer((host, port), _handler(self))  # OSError: port in use
        self._http.daemon_threads = True
        self._thread = threading.Thread(
            target=self._http.serve_forever, name="worker-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        return self._http.server_address[1]

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        if self._thread.is_alive():
            self._http.shutdown()  # waits for serve_forever, which only a started thread runs
        self._http.server_close()

    def answer(self, path: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for a GET of ``path``."""
        text = "text/plain; charset=utf-8"
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
        if path == "/healthz":
            return 200, text, b"ok\n"
        if path == "/readyz":
            why = self._readiness()
            return (200, text, b"ready\n") if why is None else (503, text, f"{why}\n".encode())
        return 404, text, b"not found: /metrics, /healthz, /readyz\n"


def _handler(server: MetricsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server protocol
            try:
                status, kind, body = server.answer(self.path.partition("?")[0])
            except Exception:  # a broken collector must not kill the serving thread
                log.exception("worker metrics: cannot answer %s", self.path)
                status, kind, body = 500, "text/plain", b"internal error\n"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # a scrape every 15 s is not news

    return Handler
