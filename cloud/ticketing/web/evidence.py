"""A ticket's evidence chart: which signal shows its fault, read from the store in use.

When the worker writes to InfluxDB, the chart reads the affected units' signal back from there
(``cloud/store/readback.py``); otherwise from the worker's journal (``cloud/store/journal.py``),
which keeps every telemetry block the worker accepted, so the page can show the signal around the
onset without a time-series database. Both are only read here. The window runs from
``lookback_s`` before the earliest onset to ``lookback_s`` after the latest finding (at most
``max_span_s``), averaged into buckets (:func:`chart.bucket_width`: hourly for a few days) so a
chart stays a few kilobytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cloud.store.journal import Journal, JournalError
from cloud.store.readback import InfluxTarget, ReadbackError, open_reader
from cloud.ticketing.web.chart import Marker, Point, Series, bucket_means, bucket_width, line_chart
from cloud.ticketing.web.i18n import tr

DAY = 86_400.0


class SeriesSource(Protocol):
    """What the chart needs of a store: one device's field over a time range."""

    def series(
        self, device: str, field: str, start: float = ..., end: float = ...
    ) -> list[Point]: ...


@dataclass(frozen=True, slots=True)
class Signal:
    """The value plotted for a fault: ``field``, or ``field − minus``, optionally only at rows
    where ``only_when`` is non-zero and has been for ``settle_s`` (ΔT means something only while
    the compressor runs, and not in the first minutes of a run, as the detector sees it)."""

    label: str
    field: str
    minus: str | None = None
    only_when: str | None = None
    settle_s: float = 0.0

    def read(self, source: SeriesSource, device: str, start: float, end: float) -> list[Point]:
        points = source.series(device, self.field, start, end)
        if self.minus is not None:
            other = dict(source.series(device, self.minus, start, end))
            points = [
                (t, None if v is None or other.get(t) is None else v - other[t]) for t, v in points
            ]
        if self.only_when is not None:
            gate = source.series(device, self.only_when, start, end)
            if gate:  # a product without this field is plotted ungated
                settled = _settled(gate, self.settle_s)
                points = [(t, v) for t, v in points if t in settled]
        return points


def _settled(gate: Sequence[Point], settle_s: float) -> set[float]:
    """The instants at which ``gate`` has been non-zero for at least ``settle_s`` (a run that was
    already on when the window opened counts from the window's first point).

    >>> sorted(_settled([(0, 1), (60, 1), (120, 0), (180, 1), (240, 1), (300, 1)], 60))
    [60, 240, 300]
    """
    out: set[float] = set()
    since: float | None = None
    for t, v in gate:
        if not v:
            since = None
            continue
        if since is None:
            since = t
        if t - since >= settle_s:
            out.add(t)
    return out


#: The key signal of each fault whose physics is known (CONTRACTS.md §3).
SIGNALS: dict[str, Signal] = {
    "cooling_decline": Signal(  # settle_s: CoolingDecline's default (cloud/anomaly/cooling.py)
        "return − supply ΔT, compressor on (K)", "return_c", "supply_c", "compressor_on", 300.0
    ),
    "noise_rise": Signal("noise (dB)", "noise_db"),
    "vibration_rise": Signal("vibration (g)", "vibration_g"),
    "overcurrent": Signal("compressor current (A)", "current_a"),
    "overheat": Signal("return air (°C)", "return_c"),
}
#: The known signals' labels, which the pages translate (``tr``; a test checks the catalogue).
SIGNAL_LABELS = frozenset(s.label for s in SIGNALS.values())


def signal_for(fault: str, devices: Sequence[Mapping[str, Any]]) -> Signal | None:
    """The fault's known signal, else the first evidence field of its first unit (a new
    detector's evidence names the telemetry field it judged, e.g. ``sensor_stuck``)."""
    if fault in SIGNALS:
        return SIGNALS[fault]
    first = next(iter(devices[0].get("evidence", {})), None) if devices else None
    return None if first is None else Signal(first, first)


@dataclass(frozen=True, slots=True)
class EvidenceChart:
    """An SVG to embed, or ``svg=None`` and the reason; ``note`` says what is shown."""

    svg: str | None
    note: str


def build_chart(
    fault: str,
    devices: Sequence[Mapping[str, Any]],
    source: SeriesSource,
    *,
    detected_ts: float | None = None,
    max_devices: int = 6,
    max_points: int = 100,
    lookback_s: float = 2 * DAY,
    max_span_s: float = 12 * DAY,
    store: str | None = None,
) -> EvidenceChart:
    """The chart of the first ``max_devices`` affected units (earliest first) of a ticket,
    in buckets of :func:`bucket_width` for ``max_points`` (a few days: hourly means)."""
    store = store or tr("the journal")
    signal = signal_for(fault, devices)
    if signal is None:
        return EvidenceChart(None, tr("no signal is known to show {fault}", fault=fault))
    if not devices:
        return EvidenceChart(None, tr("the ticket names no affected unit"))
    shown = list(devices[:max_devices])
    starts = [e.get("onset_ts") or e["first_ts"] for e in shown]
    start = min(starts) - lookback_s
    end = min(max(e["last_ts"] for e in shown) + lookback_s, start + max_span_s)
    width = bucket_width(end - start, max_points)
    series = [
        Series(e["device"], bucket_means(signal.read(source, e["device"], start, end), width))
        for e in shown
    ]
    if not any(s.points for s in series):
        return EvidenceChart(
            None, tr("{store} holds no {field} for these units", store=store, field=signal.field)
        )
    markers = [] if detected_ts is None else [Marker(detected_ts, tr("first detection"))]
    label = tr(signal.label) if signal.label in SIGNAL_LABELS else signal.label
    try:
        svg = line_chart(
            series, y_label=label, markers=markers, gap_s=2.5 * width, width=1120, height=320
        )
    except ValueError:  # every value was beyond what can be drawn
        return EvidenceChart(
            None,
            tr("{store} holds no plottable {field} for these units", store=store,
               field=signal.field),
        )  # fmt: skip
    hours = width / 3600
    mean = tr("hourly means") if hours == 1 else tr("{h}-hour means", h=f"{hours:g}")
    of = (
        tr("{n} of {m}", n=len(shown), m=len(devices)) if len(devices) > len(shown)
        else f"{len(shown)}"
    )  # fmt: skip
    return EvidenceChart(
        svg,
        tr("{label}, {mean}; {of} affected unit(s), earliest first; from {store}",
           label=label, mean=mean, of=of, store=store),
    )  # fmt: skip


def chart_for_ticket(
    ticket: Mapping[str, Any],
    journal_path: str | None,
    detected_ts: float | None = None,
    influx: InfluxTarget | None = None,
) -> EvidenceChart:
    """:func:`build_chart` over the store in use: InfluxDB when ``influx`` is configured (the
    worker writes telemetry there, and the API may run on another host than the worker), else
    the worker's journal at ``journal_path``; the journal too when InfluxDB cannot be read. Each
    is opened for this call only."""
    devices = ticket.get("evidence", {}).get("devices", [])
    unread = ""  # why InfluxDB could not be read, when the journal stands in
    if influx is not None:
        try:
            reader = open_reader(influx)
            try:
                return build_chart(
                    ticket["fault"], devices, reader, detected_ts=detected_ts, store="InfluxDB"
                )
            finally:
                reader.close()
        except ReadbackError as e:
            unread = str(e)
            if not (journal_path and Path(journal_path).is_file()):
                return EvidenceChart(None, tr("the chart could not be read: {reason}", reason=e))
    if not journal_path:
        return EvidenceChart(
            None, tr("no store is configured (QLOOP_INFLUX_URL or QLOOP_JOURNAL), so no chart")
        )
    if not Path(journal_path).is_file():
        return EvidenceChart(None, tr("the configured journal does not exist (yet), so no chart"))
    try:  # read-only: the live worker writes this journal, the pages only look
        journal = Journal.open_readonly(journal_path)
    except JournalError as e:
        return EvidenceChart(
            None, tr("the configured journal cannot be read ({reason}), so no chart", reason=e)
        )
    try:
        chart = build_chart(ticket["fault"], devices, journal, detected_ts=detected_ts)
    finally:
        journal.close()
    if unread:  # say that the journal stood in for InfluxDB
        stood_in = tr("InfluxDB could not be read: {reason}", reason=unread)
        return EvidenceChart(chart.svg, f"{chart.note} ({stood_in})")
    return chart
