"""Telemetry read back from InfluxDB for the ticket pages' evidence charts.

When the worker writes telemetry to InfluxDB (CONTRACTS.md §2), the API reads the charts from
there too: the API may run on another host than the worker and its journal. The charts need one
thing of a store (``SeriesSource`` in ``cloud/ticketing/web/evidence.py``): one device's field
over a time range, as ``(ts, value)`` points in time order.

Two query dialects speak to the servers that accept the worker's writes:

- ``flux``: InfluxDB 2.x (and 1.8+ with Flux enabled), through influxdb-client's query API and
  the shipped query ``device_field.flux`` (``cloud/store/queries.py`` makes its parameters
  literals, never code);
- ``victoriametrics``: VictoriaMetrics, which accepts the InfluxDB write API but answers no Flux.
  It keeps field ``f`` of measurement ``m`` as the metric ``m_f`` with the tags as labels and
  returns raw samples from ``/api/v1/export``.

``auto`` (the default) asks the server's ``/health`` once per process: InfluxDB answers JSON
naming itself, VictoriaMetrics a bare ``OK``.

Points come back as stored, deduplicated by time: VictoriaMetrics keeps a point written twice
(the sink delivers at least once) twice, InfluxDB overwrites it. A firmware update starts a new
series (``firmware`` is a tag), so every series of the device is merged.
"""

from __future__ import annotations

import functools
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from cloud.store.queries import load_query
from contract.errors import QloopError

Dialect = Literal["auto", "flux", "victoriametrics"]
Point = tuple[float, float | None]


class ReadbackError(QloopError):
    """The store could not be read (unreachable, refused, or not a server we can query)."""


@dataclass(frozen=True, slots=True)
class InfluxTarget:
    """Where the worker writes telemetry, as the API needs it to read it back."""

    url: str
    token: str = ""
    org: str = ""
    bucket: str = "qloop"
    dialect: Dialect = "auto"
    timeout_s: float = 10.0


class SeriesReader(Protocol):
    def series(self, device: str, field: str, start: float, end: float) -> list[Point]: ...

    def close(self) -> None: ...


def open_reader(target: InfluxTarget) -> SeriesReader:
    """A reader for ``target`` in its dialect (``auto``: asked of the server)."""
    dialect = target.dialect if target.dialect != "auto" else _known_dialect(target)
    if dialect == "victoriametrics":
        return VictoriaMetricsReader(target)
    return FluxReader(target)


@functools.lru_cache(maxsize=16)
def _known_dialect(target: InfluxTarget) -> Literal["flux", "victoriametrics"]:
    """:func:`detect_dialect`, asked once per target (a failure is not remembered)."""
    return detect_dialect(target)


def detect_dialect(target: InfluxTarget) -> Literal["flux", "victoriametrics"]:
    """``flux`` when ``/health`` answers InfluxDB's JSON, ``victoriametrics`` for its ``OK``."""
    body = _get(f"{target.url.rstrip('/')}/health", target.timeout_s, ok_statuses=(200, 503))
    text = body.strip()
    if text == b"OK":
        return "victoriametrics"
    try:
        health = json.loads(text)
    except ValueError:
        health = None
    if isinstance(health, dict) and str(health.get("name", "")).startswith("influxdb"):
        return "flux"
    raise ReadbackError(
        f"{target.url} is neither InfluxDB nor VictoriaMetrics by its /health answer"
        f" ({text[:80]!r}); set the query dialect explicitly"
    )


def merge_points(points: Iterable[Point]) -> list[Point]:
    """Points in time order, one per timestamp (the first of equal ones).

    >>> merge_points([(2.0, 5.0), (1.0, 4.0), (2.0, 5.0)])
    [(1.0, 4.0), (2.0, 5.0)]
    """
    out: list[Point] = []
    for p in sorted(points, key=lambda p: p[0]):
        if not out or out[-1][0] != p[0]:
            out.append(p)
    return out


class FluxReader:
    """Reads through influxdb-client and the shipped query ``device_field``."""

    def __init__(self, target: InfluxTarget) -> None:
        from influxdb_client import InfluxDBClient  # only the Flux dialect needs it

        self.target = target
        self._client = InfluxDBClient(
            url=target.url, token=target.token, org=target.org, timeout=int(target.timeout_s * 1e3)
        )

    def series(self, device: str, field: str, start: float, end: float) -> list[Point]:
        # the query's stop is exclusive, the chart's end inclusive: one millisecond more
        flux = load_query(
            "device_field",
            bucket=self.target.bucket,
            device=device,
            field=field,
            start=start,
            stop=end + 1e-3,
        )
        try:
            records = self._client.query_api().query_stream(flux, org=self.target.org)
            points = [(r.get_time().timestamp(), _float(r.get_value())) for r in records]
        except Exception as e:  # unreachable, refused, bad token: say so on the page
            raise ReadbackError(f"InfluxDB at {self.target.url}: {_short(e)}") from e
        return merge_points(points)

    def close(self) -> None:
        self._client.close()


class VictoriaMetricsReader:
    """Reads raw samples from VictoriaMetrics' ``/api/v1/export``."""

    def __init__(self, target: InfluxTarget) -> None:
        self.target = target

    def series(self, device: str, field: str, start: float, end: float) -> list[Point]:
        match = f"{{__name__={_label('telemetry_' + field)},device={_label(device)}}}"
        query = urllib.parse.urlencode(
            {"match[]": match, "start": _seconds(start), "end": _seconds(end)}
        )
        body = _get(f"{self.target.url.rstrip('/')}/api/v1/export?{query}", self.target.timeout_s)
        points: list[Point] = []
        for text in body.splitlines():
            if not text.strip():
                continue
            try:
                s = json.loads(text)
                pairs = zip(s["timestamps"], s["values"], strict=True)
                points.extend((ms / 1e3, _float(v)) for ms, v in pairs)
            except (ValueError, KeyError, TypeError) as e:
                raise ReadbackError(f"VictoriaMetrics at {self.target.url}: bad export line") from e
        return merge_points(p for p in points if start <= p[0] <= end)

    def close(self) -> None:
        pass


def _label(value: str) -> str:
    """A PromQL string literal (series selectors are PromQL)."""
    return json.dumps(value)  # JSON's escapes are a subset of PromQL's double-quoted strings


def _seconds(t: float) -> str:
    return f"{t:.3f}"


def _float(v: object) -> float | None:
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _get(url: str, timeout_s: float, ok_statuses: tuple[int, ...] = (200,)) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            return r.read()
    except urllib.error.HTTPError as e:
        if e.code in ok_statuses:
            return e.read()
        raise ReadbackError(f"{url.split('?')[0]} answered {e.code} {e.reason}") from e
    except (OSError, ValueError) as e:
        raise ReadbackError(f"{url.split('?')[0]} did not answer: {_short(e)}") from e


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]
