"""Real servers for the InfluxDB write path, as pytest fixtures (a plugin: see tests/conftest.py).

- ``victoria_metrics``: Debian's VictoriaMetrics on a free loopback port with its data in the
  test's directory. It accepts the InfluxDB v2 write API that influxdb-client speaks, stores
  line-protocol field ``f`` of measurement ``m`` as the metric ``m_f`` with the tags as labels,
  keeps every sample as written (no de-duplication, so a point written twice shows twice) and
  can be stopped and started again on the same port and data, to take the server away.
- ``influxdb2``: the real InfluxDB 2 named by ``INFLUXDB_URL``, ``INFLUXDB_TOKEN`` and
  ``INFLUXDB_ORG`` (bucket ``INFLUXDB_BUCKET``, default ``qloop``); skipped when they are unset.
- :class:`HttpRelay`: a plain HTTP forwarder that counts requests and can be closed and
  reopened on its port, for a server the test cannot stop or read counters from.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from qloop.broker import find_binary, free_port
from tests.helpers import wait_for

VM_PATHS = ("/usr/bin/victoria-metrics", "/usr/local/bin/victoria-metrics")


def find_victoria_metrics() -> str | None:
    return find_binary("victoria-metrics", VM_PATHS)


def _get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


class VictoriaMetrics:
    """One VictoriaMetrics process; :meth:`stop` and :meth:`start` keep its port and data."""

    def __init__(self, binary: str, data_dir: Path, port: int | None = None) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        data_dir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        log = open(self.data_dir / "victoria-metrics.log", "ab")  # noqa: SIM115 - kept by Popen
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"-storageDataPath={self.data_dir / 'data'}",
                f"-httpListenAddr=127.0.0.1:{self.port}",
                "-retentionPeriod=100y",  # test points may carry any event time
                "-search.latencyOffset=0s",  # fresh points are visible to queries at once
                "-search.disableCache",
                "-loggerLevel=ERROR",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_for(self._healthy, timeout, "VictoriaMetrics to answer /health")

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            tail = (self.data_dir / "victoria-metrics.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"VictoriaMetrics exited with {self.proc.returncode}:\n{tail}")
        try:
            return _get(f"{self.url}/health", 1.0).strip() == b"OK"
        except OSError:
            return False

    def stop(self, timeout: float = 30.0) -> None:
        """Stop cleanly (it writes what it holds in memory to disk first)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def flush(self) -> None:
        """Make recently written samples searchable now (``/internal/force_flush``)."""
        _get(f"{self.url}/internal/force_flush")

    def export(self, match: str) -> list[dict]:
        """Every stored sample of the series matching ``match``, one dict per series.

        Recently written samples are made searchable first (:meth:`flush`).
        """
        self.flush()
        query = urllib.parse.urlencode({"match[]": match, "start": "0"})
        body = _get(f"{self.url}/api/v1/export?{query}", 30.0)
        return [json.loads(line) for line in body.splitlines() if line.strip()]

    def influx_write_requests(self) -> int:
        """Write requests the server accepted on its InfluxDB endpoints (its own counter)."""
        total = 0
        for text in _get(f"{self.url}/metrics").decode().splitlines():
            if text.startswith("vm_http_requests_total{") and 'path="/influx/write"' in text:
                total += int(float(text.rsplit(" ", 1)[1]))
        return total


@pytest.fixture
def victoria_metrics(tmp_path) -> Iterator[VictoriaMetrics]:
    """A real VictoriaMetrics on a free loopback port with its data in the test's directory."""
    binary = find_victoria_metrics()
    if binary is None:
        msg = "VictoriaMetrics is not installed: run scripts/setup.sh --test"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    vm = VictoriaMetrics(binary, tmp_path / "victoria-metrics")
    vm.start()
    yield vm
    vm.stop()


@dataclass(frozen=True)
class InfluxDB2:
    url: str
    token: str
    org: str
    bucket: str


@pytest.fixture
def influxdb2() -> InfluxDB2:
    """The real InfluxDB 2 named by INFLUXDB_URL, INFLUXDB_TOKEN and INFLUXDB_ORG."""
    env = {k: os.environ.get(f"INFLUXDB_{k.upper()}") for k in ("url", "token", "org")}
    if not all(env.values()):
        pytest.skip("no InfluxDB 2: set INFLUXDB_URL, INFLUXDB_TOKEN and INFLUXDB_ORG")
    return InfluxDB2(**env, bucket=os.environ.get("INFLUXDB_BUCKET", "qloop"))  # type: ignore[arg-type]


class HttpRelay:
    """Forwards every HTTP request to ``upstream`` and counts them by method and path.

    :meth:`close` takes the relay off its port (clients then see a refused connection, as if the
    server were down); :meth:`open` puts it back on the same port.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = free_port()
        self.counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.open()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def requests(self, method: str, path: str) -> int:
        with self._lock:
            return self.counts.get((method, path), 0)

    def open(self) -> None:
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with relay._lock:
                    key = (self.command, urllib.parse.urlsplit(self.path).path)
                    relay.counts[key] = relay.counts.get(key, 0) + 1
                skip = {"host", "content-length", "connection"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                req = urllib.request.Request(
                    relay.upstream + self.path, body or None, headers, method=self.command
                )
                try:
                    with urllib.request.urlopen(req, timeout=30) as r:
                        status, out, out_headers = r.status, r.read(), r.headers
                except urllib.error.HTTPError as e:
                    status, out, out_headers = e.code, e.read(), e.headers
                self.send_response(status)
                for k, v in out_headers.items():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = _forward  # noqa: N815 - http.server's naming

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
