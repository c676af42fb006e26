"""Telemetry, events and findings to InfluxDB (CONTRACTS.md §2), through influxdb-client.

The worker thread only turns messages into line-protocol lines and appends them to a bounded
buffer (:meth:`InfluxSink.add`, :meth:`InfluxSink.add_finding`); a writer thread of the sink's
own sends them, so a slow or unreachable InfluxDB never stalls ingest and detection.

The writer sends a request as soon as ``batch_points`` lines are buffered, and the rest (a partial
batch) when :meth:`InfluxSink.flush` asks for it (the worker does after each committed batch of
messages) or ``flush_interval_s`` after the previous write. Requests are gzip-compressed (line
protocol shrinks about tenfold).

Failures: when InfluxDB is down, times out or answers 5xx/429 (or 401/403/404, which an operator
fixes), the batch goes back to the front of the buffer and the writer retries after a backoff
that doubles from ``backoff_s`` up to ``max_backoff_s`` (at least the server's Retry-After).
A 400 or 422 says the lines themselves are refused; retrying cannot help, so the batch is
dropped and counted in ``rejected``, and the rest goes on. The buffer holds at most
``max_buffered`` lines (plus one batch in flight); past that the oldest are dropped and counted
in ``dropped``, never silently. The journal keeps every message regardless, so points that
were dropped here can be rebuilt from it. Delivery is at least once: a request that timed out
after the server stored it is sent again, which InfluxDB absorbs (same series and time
overwrite the point).

Precision is milliseconds. A reading's ``ts`` is a float of Unix seconds, which near today's
epoch resolves about 0.24 µs, so nanosecond timestamps would only carry float noise
(``1716000000.123`` → ``…122999808``), while ``round(ts * 1000)`` is exact for every sample period
of 1 ms or more (the simulated products sample at 20 Hz at most); lines are 6 bytes shorter, and
VictoriaMetrics and Prometheus-style stores keep milliseconds anyway. A product that samples
faster than 1 kHz needs ``PRECISION`` microseconds.

Lines are built here rather than with ``influxdb_client.Point``: several times cheaper in the
worker's thread (``Point`` builds an object per field and formats through generic code), and
the escaping is stricter (backslashes are escaped, so a tag value
ending in ``\\`` stays intact; control characters, which line protocol cannot carry in a tag, become
U+FFFD). Numbers that are not finite have no line-protocol form and are left out; a point left
with no field at all (an event with neither value nor limit) is not written and is counted in
``empty``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from cloud.anomaly.base import Finding
from contract.protocol import Event, Telemetry

log = logging.getLogger(__name__)


class DeviceInfo(Protocol):
    """The tags a point carries: what the device said of itself in its latest birth (the
    ingest registry's record has these and more)."""

    device: str
    model: str
    batch: str
    firmware: str


PRECISION = WritePrecision.MS
_PER_SECOND = 1000  # timestamp units per second at PRECISION

_ESCAPE = {ord(c): "\\" + c for c in "\\, ="}
_ESCAPE.update({c: "\ufffd" for c in range(32)})
_ESCAPE[127] = "\ufffd"
_EXACT_INT = 2**53  # integers a float holds exactly
_REFUSED = (400, 422)  # the lines themselves are refused: sending them again cannot help


def escape(text: str) -> str:
    r"""A tag key, tag value or field key in line-protocol form.

    >>> print(escape("KFR 35,GW=a\\"))
    KFR\ 35\,GW\=a\\
    """
    return text.translate(_ESCAPE)


def _number(x: object) -> str | None:
    """A float field value, or None for what line protocol cannot carry (NaN, inf, huge ints).

    An integer is written without the ``i`` suffix, which line protocol reads as a float.
    """
    kind = type(x)
    if kind is float:
        return repr(x) if x - x == 0.0 else None  # type: ignore[operator]  # NaN/inf: not 0
    if kind is int and -_EXACT_INT < x < _EXACT_INT:  # type: ignore[operator]
        return str(x)
    try:
        f = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return repr(f) if f - f == 0.0 else None


def _timestamp(ts: float) -> int:
    return round(ts * _PER_SECOND)


def series_key(measurement: str, tags: Mapping[str, str]) -> str:
    """``measurement,k=v,...`` with tags sorted by key (InfluxDB's preferred order)."""
    return ",".join([measurement, *(f"{escape(k)}={escape(v)}" for k, v in sorted(tags.items()))])


def line(key: str, fields: Iterable[tuple[str, object]], ts: float) -> str | None:
    """One line for a series key; None when no field has a number."""
    parts = [f"{escape(name)}={s}" for name, x in fields if (s := _number(x)) is not None]
    if not parts:
        return None
    return f"{key} {','.join(parts)} {_timestamp(ts)}"


def telemetry_lines(info: DeviceInfo, t: Telemetry) -> list[str]:
    """One ``telemetry`` line per row that has at least one value (CONTRACTS.md §2)."""
    key = series_key(
        "telemetry",
        {
            "device": info.device,
            "model": info.model,
            "batch": info.batch,
            "firmware": info.firmware,
        },
    )
    ts_at = t.fields.index("ts")
    # field names are identifiers (the codec checks), so they need no escaping
    names = [(i, f) for i, f in enumerate(t.fields) if i != ts_at]
    out = []
    for row in t.rows:  # the worker's hottest loop: common float/int values inline
        parts = []
        for i, f in names:
            x = row[i]
            if x is None:
                continue
            if type(x) is float and x - x == 0.0:
                parts.append(f"{f}={x!r}")
            elif (s := _number(x)) is not None:
                parts.append(f"{f}={s}")
        if parts:
            out.append(f"{key} {','.join(parts)} {_timestamp(row[ts_at])}")
    return out


def event_line(info: DeviceInfo, e: Event) -> str | None:
    key = series_key(
        "event", {"device": info.device, "model": info.model, "batch": info.batch, "kind": e.kind}
    )
    return line(key, (("value", e.value), ("limit", e.limit)), e.ts)


def finding_line(info: DeviceInfo, f: Finding) -> str | None:
    """``score``, ``active`` (1/0: 0 says the unit is back at baseline) and numeric evidence."""
    key = series_key(
        "finding",
        {"device": info.device, "model": info.model, "batch": info.batch, "fault": f.fault},
    )
    evidence = [(k, x) for k, x in f.evidence.items() if k not in ("score", "active")]
    return line(key, [("score", f.score), ("active", 1.0 if f.active else 0.0), *evidence], f.ts)


@dataclass(frozen=True, slots=True)
class SinkStats:
    """Counts in points (lines) except ``requests`` and ``failed_writes``."""

    buffered: int  # waiting in the buffer
    in_flight: int  # in the request being sent
    written: int  # acknowledged by the server
    dropped: int  # oldest points pushed out of the full buffer (or left at close)
    rejected: int  # refused by the server as malformed (400/422)
    empty: int  # built with no numeric field, so not sent
    requests: int  # successful write requests
    failed_writes: int  # requests that failed and will be retried


class InfluxSink:
    """Buffers points and writes them from its own thread; see the module docstring."""

    def __init__(
        self,
        url: str,
        token: str,
        org: str,
        bucket: str,
        *,
        max_buffered: int = 1_000_000,
        batch_points: int = 5000,
        flush_interval_s: float | None = 1.0,
        backoff_s: float = 0.5,
        max_backoff_s: float = 60.0,
        timeout_s: float = 10.0,
        gzip: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_buffered < 1 or batch_points < 1:
            raise ValueError("max_buffered and batch_points must be at least 1")
        if backoff_s <= 0 or max_backoff_s < backoff_s:
            raise ValueError("need 0 < backoff_s <= max_backoff_s")
        self.bucket = bucket
        self.org = org
        self.max_buffered = max_buffered
        self.batch_points = batch_points
        self.flush_interval_s = flush_interval_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.clock = clock
        self._client = InfluxDBClient(
            url=url, token=token, org=org, timeout=int(timeout_s * 1000), enable_gzip=gzip
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self._lines: deque[str] = deque()
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()  # one request at a time, so batches stay in order
        self._flush_wanted = False
        self._dropping = False
        self._closing = False
        self._backoff = 0.0
        self._retry_at = float("-inf")
        self._last_write = clock()
        self._in_flight = 0
        self._written = self._dropped = self._rejected = self._empty = 0
        self._requests = self._failed = 0
        self._thread = threading.Thread(target=self._run, name="influx-writer", daemon=True)
        self._thread.start()

    # --- the worker's side: never blocks on the network ---------------------------------

    def add(self, info: DeviceInfo, m: Telemetry | Event) -> None:
        """Queue the points of one telemetry block or event (the Ingestor's ``on_points``)."""
        if isinstance(m, Telemetry):
            self._add(telemetry_lines(info, m), len(m.rows))
        else:
            one = event_line(info, m)
            self._add([one] if one else [], 1)

    def add_finding(self, info: DeviceInfo, f: Finding) -> None:
        one = finding_line(info, f)
        self._add([one] if one else [], 1)

    def _add(self, lines: list[str], built: int) -> None:
        with self._cond:
            self._empty += built - len(lines)
            self._lines.extend(lines)
            self._trim()
            if len(self._lines) >= self.batch_points:
                self._cond.notify()

    def _trim(self) -> None:
        over = len(self._lines) - self.max_buffered
        for _ in range(over):
            self._lines.popleft()
        if over > 0:
            if not self._dropping:  # once per episode, not once per message
                log.warning(
                    "InfluxDB buffer full (%d points): dropping the oldest", len(self._lines)
                )
            self._dropping = True
            self._dropped += over

    def flush(self) -> None:
        """Ask the writer to send everything buffered now (returns at once)."""
        with self._cond:
            self._flush_wanted = True
            self._cond.notify()

    def stats(self) -> SinkStats:
        with self._cond:
            return SinkStats(
                len(self._lines),
                self._in_flight,
                self._written,
                self._dropped,
                self._rejected,
                self._empty,
                self._requests,
                self._failed,
            )

    # --- the writer's side ------------------------------------------------------------

    def _due(self, now: float) -> tuple[bool, float | None]:
        """(write now?, else how long to wait); called with the condition held."""
        if not self._lines:
            return False, None
        if now < self._retry_at:
            return False, self._retry_at - now
        if self._flush_wanted or len(self._lines) >= self.batch_points:
            return True, None
        if self.flush_interval_s is None:
            return False, None
        wait = self._last_write + self.flush_interval_s - now
        return wait <= 0, wait

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closing:
                        return
                    due, wait = self._due(self.clock())
                    if due:
                        break
                    self._cond.wait(timeout=wait)
                partial = self._flush_wanted or len(self._lines) < self.batch_points
                self._flush_wanted = False
            self.write_pending(partial=partial)

    def write_pending(self, *, partial: bool = True) -> bool:
        """Send what is buffered in this thread, in batches; True when all was sent.

        With ``partial`` False only full batches go. Stops at the first failed request (the
        batch stays buffered and the writer backs off). The writer thread calls this; so does
        :meth:`close`.
        """
        with self._send_lock:
            while True:
                with self._cond:
                    n = len(self._lines)
                    if n == 0 or (not partial and n < self.batch_points):
                        return n == 0
                    batch = [self._lines.popleft() for _ in range(min(n, self.batch_points))]
                    self._in_flight = len(batch)
                if not self._send(batch):
                    return False

    def _send(self, batch: list[str]) -> bool:
        try:
            self._write_api.write(
                bucket=self.bucket,
                org=self.org,
                record="\n".join(batch).encode(),
                write_precision=PRECISION,
            )
        except ApiException as e:
            if e.status in _REFUSED:
                with self._cond:
                    self._in_flight = 0
                    self._rejected += len(batch)
                log.error("InfluxDB refused %d points (%s): %s", len(batch), e.status, e.body)
                return True
            self._failed_back(batch, f"HTTP {e.status} {e.reason}", _retry_after(e))
            return False
        except Exception as e:  # unreachable, timeout, reset: keep the points, back off
            self._failed_back(batch, repr(e), 0.0)
            return False
        with self._cond:
            self._in_flight = 0
            self._written += len(batch)
            self._requests += 1
            self._backoff = 0.0
            self._dropping = False
            self._retry_at = float("-inf")
            self._last_write = self.clock()
        return True

    def _failed_back(self, batch: list[str], why: str, retry_after: float) -> None:
        with self._cond:
            self._in_flight = 0
            self._lines.extendleft(reversed(batch))
            self._trim()
            self._failed += 1
            self._backoff = min(self.max_backoff_s, max(self.backoff_s, self._backoff * 2))
            self._retry_at = self.clock() + max(self._backoff, retry_after)
            buffered = len(self._lines)
        log.warning(
            "InfluxDB write failed (%s); %d points buffered, retry in %.1fs",
            why,
            buffered,
            max(self._backoff, retry_after),
        )

    def close(self, timeout_s: float = 10.0) -> SinkStats:
        """Stop the writer, try once more to send what is left, and count what could not go."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout_s)
        self.write_pending()
        with self._cond:
            left = len(self._lines)
            self._lines.clear()
            self._dropped += left
        if left:
            log.warning("InfluxDB unreachable at close: %d points not written", left)
        self._client.close()
        return self.stats()


def _retry_after(e: ApiException) -> float:
    try:
        return float((e.headers or {}).get("Retry-After", 0))
    except (TypeError, ValueError):
        return 0.0
