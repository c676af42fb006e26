"""Telemetry, events and findings to InfluxDB (CONTRACTS.md §2), through influxdb-client.

Points are built in the worker thread and written in batches on :meth:`flush` (the worker calls
it after each committed batch of messages). When InfluxDB is down or refuses a write, the batch
stays in a bounded buffer and the next flush retries it, after a backoff that doubles up to a
minute; detection goes on meanwhile. Past ``max_buffered`` points the oldest are dropped and
counted (``dropped_points``), never silently. The journal keeps every message regardless, so
nothing is lost for good: points can be rebuilt from it.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable

from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS

from cloud.anomaly.base import Finding
from cloud.registry import DeviceInfo
from qloop.protocol import Event, Telemetry

log = logging.getLogger(__name__)


def telemetry_points(info: DeviceInfo, t: Telemetry) -> list[Point]:
    ts_at = t.fields.index("ts")
    names = [(i, f) for i, f in enumerate(t.fields) if f != "ts"]
    out = []
    for row in t.rows:
        p = (
            Point("telemetry")
            .tag("device", info.device)
            .tag("model", info.model)
            .tag("batch", info.batch)
            .tag("firmware", info.firmware)
        )
        has = False
        for i, f in names:
            x = row[i]
            if x is not None:
                p = p.field(f, float(x))
                has = True
        if has:
            out.append(p.time(_ns(row[ts_at]), WritePrecision.NS))
    return out


def event_point(info: DeviceInfo, e: Event) -> Point:
    p = (
        Point("event")
        .tag("device", info.device)
        .tag("model", info.model)
        .tag("batch", info.batch)
        .tag("kind", e.kind)
    )
    for name, x in (("value", e.value), ("limit", e.limit)):
        if x is not None:
            p = p.field(name, float(x))
    return p.time(_ns(e.ts), WritePrecision.NS)


def finding_point(info: DeviceInfo, f: Finding) -> Point:
    p = (
        Point("finding")
        .tag("device", info.device)
        .tag("model", info.model)
        .tag("batch", info.batch)
        .tag("fault", f.fault)
        .field("score", float(f.score))
        .field("active", 1.0 if f.active else 0.0)
    )
    for name, x in f.evidence.items():
        if isinstance(x, (int, float)) and math.isfinite(x):
            p = p.field(name, float(x))
    return p.time(_ns(f.ts), WritePrecision.NS)


def _ns(ts: float) -> int:
    return int(round(ts * 1e9))


class InfluxSink:
    def __init__(
        self,
        url: str,
        token: str,
        org: str,
        bucket: str,
        *,
        max_buffered: int = 1_000_000,
        batch_points: int = 5000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bucket = bucket
        self.org = org
        self.max_buffered = max_buffered
        self.batch_points = batch_points
        self.clock = clock
        self._client = InfluxDBClient(url=url, token=token, org=org, timeout=10_000)
        self._write = self._client.write_api(write_options=SYNCHRONOUS)
        self._points: deque[Point] = deque()
        self.written_points = 0
        self.dropped_points = 0
        self.failed_writes = 0
        self._backoff = 0.0
        self._retry_at = 0.0

    def _add(self, points: list[Point]) -> None:
        self._points.extend(points)
        while len(self._points) > self.max_buffered:
            self._points.popleft()
            self.dropped_points += 1

    def add(self, info: DeviceInfo, m: Telemetry | Event) -> None:
        self._add(telemetry_points(info, m) if isinstance(m, Telemetry) else [event_point(info, m)])

    def add_finding(self, info: DeviceInfo, f: Finding) -> None:
        self._add([finding_point(info, f)])

    @property
    def buffered(self) -> int:
        return len(self._points)

    def flush(self) -> bool:
        """Write what is buffered; False when the server refused or was unreachable."""
        if not self._points or self.clock() < self._retry_at:
            return not self._points
        while self._points:
            batch = [self._points[i] for i in range(min(self.batch_points, len(self._points)))]
            try:
                self._write.write(bucket=self.bucket, org=self.org, record=batch)
            except Exception as e:  # server down, timeout, 5xx: keep the points, back off
                self.failed_writes += 1
                self._backoff = min(60.0, max(0.5, self._backoff * 2))
                self._retry_at = self.clock() + self._backoff
                log.warning(
                    "InfluxDB write failed (%s); %d points buffered, retry in %.1fs",
                    e,
                    len(self._points),
                    self._backoff,
                )
                return False
            for _ in batch:
                self._points.popleft()
            self.written_points += len(batch)
        self._backoff = 0.0
        return True

    def close(self) -> None:
        self.flush()
        self._client.close()
