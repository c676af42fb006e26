"""Evidence charts: time series in, one small self-contained SVG out.

Pure code, no I/O and no clock: the page reads the series (``evidence.py``) and this module only
averages them into buckets and draws lines. The SVG needs no script and no external file, so a
page that embeds it works offline, prints, and passes a strict Content-Security-Policy.

>>> svg = line_chart([Series("ac-1", [(0.0, 1.0), (3600.0, 2.0)])], y_label="ΔT (K)")
>>> svg.startswith("<svg") and svg.count('class="series') == 1
True
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

Point = tuple[float, float | None]

HOUR = 3600.0
#: Bucket widths a chart may use, so that labels read "hourly", "6-hourly" … (seconds).
BUCKETS = (HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, 24 * HOUR)
#: Steps between time-axis ticks (seconds).
TIME_STEPS = (HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, 86_400.0, 2 * 86_400.0, 7 * 86_400.0)
#: Colour-blind-safe line colours (Okabe-Ito), one per series, repeating after eight.
GRID = "#eaeef2"
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")


@dataclass(frozen=True, slots=True)
class Series:
    """One line: a label (the device) and its (time, value) points in time order."""

    label: str
    points: Sequence[tuple[float, float]]


@dataclass(frozen=True, slots=True)
class Marker:
    """A vertical line at an event time, e.g. the first detection."""

    ts: float
    label: str


def bucket_width(span_s: float, max_points: int = 240) -> float:
    """The narrowest width in :data:`BUCKETS` giving at most ``max_points`` buckets over ``span_s``.

    >>> bucket_width(3 * 86_400), bucket_width(30 * 86_400)
    (3600.0, 10800.0)
    """
    if max_points < 1:
        raise ValueError("max_points must be >= 1")
    for width in BUCKETS:
        if span_s / width <= max_points:
            return width
    return math.ceil(span_s / max_points / BUCKETS[-1]) * BUCKETS[-1]


def bucket_means(points: Iterable[Point], width: float) -> list[tuple[float, float]]:
    """The mean of the finite values in each ``width``-second bucket (aligned to multiples of
    ``width``), stamped at the bucket's middle; buckets without a value are left out.

    >>> bucket_means([(0, 1.0), (10, 3.0), (3600, None), (3700, 5.0), (7300, math.nan)], 3600)
    [(1800.0, 2.0), (5400.0, 5.0)]
    """
    if not width > 0:
        raise ValueError(f"bucket width must be positive, got {width}")
    sums: dict[int, list[float]] = {}
    for ts, value in points:
        if value is None or not math.isfinite(value):
            continue  # "sensor gave no value" is not a zero
        acc = sums.setdefault(math.floor(ts / width), [0.0, 0])
        acc[0] += value
        acc[1] += 1
    return [((k + 0.5) * width, s / n) for k, (s, n) in sorted(sums.items())]


PLOTTABLE = 1e100  # larger magnitudes (and NaN) are not drawn


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round values (steps of 1, 2 or 5 × 10^k) covering [lo, hi].

    >>> nice_ticks(11.3, 14.8)
    [11.0, 12.0, 13.0, 14.0, 15.0]
    >>> nice_ticks(0.031, 0.052)
    [0.03, 0.035, 0.04, 0.045, 0.05, 0.055]
    >>> nice_ticks(-1e-320, 1e-320)  # flatter than steps can be: an axis around zero
    [-1.0, -0.5, 0.0, 0.5, 1.0]
    """
    if hi < lo:
        lo, hi = hi, lo
    scale = max(abs(lo), abs(hi))
    if hi - lo <= scale * 1e-9 or hi - lo < 1e-200:
        # a flat line (or one flatter than a float can divide up) still needs an axis around it
        pad = scale * 0.05 if scale > 1e-200 else 1.0
        lo, hi = lo - pad, hi + pad
    if not math.isfinite(hi - lo):  # values near the float's limit: no round steps to be had
        return [lo, hi]
    raw = (hi - lo) / max(1, count)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    n = math.ceil((hi - first) / step - 1e-9)
    return [round(first + i * step, 12) for i in range(n + 1)]


def _decimals(step: float) -> int:
    """Decimals that tell ticks ``step`` apart (2.5 → 1, 0.05 → 2, 20 → 0)."""
    digits = 0
    while digits < 12 and abs(step * 10**digits - round(step * 10**digits)) > 1e-6:
        digits += 1
    return digits


def _time_ticks(t0: float, t1: float, max_ticks: int = 8) -> tuple[list[float], str]:
    span = max(t1 - t0, 1.0)
    step = next((s for s in TIME_STEPS if span / s <= max_ticks), TIME_STEPS[-1])
    fmt = "%m-%d" if step >= 86_400 else "%m-%d %H:%M"
    first = math.ceil(t0 / step) * step
    return [first + i * step for i in range(int((t1 - first) // step) + 1)], fmt


def line_chart(
    series: Sequence[Series],
    *,
    y_label: str,
    markers: Sequence[Marker] = (),
    gap_s: float | None = None,
    width: int = 880,
    height: int = 300,
    title: str | None = None,
) -> str:
    """An SVG line chart of ``series`` sharing one time axis (UTC) and one value axis.

    A line breaks where two consecutive points are more than ``gap_s`` apart (a unit that was
    offline is not drawn as a straight line across its silence). Raises ``ValueError`` when no
    series has a point: the caller says "no data" instead of drawing an empty frame.
    """
    # no sensor reports a value beyond PLOTTABLE; one that does (a broken unit, a hostile
    # client) must not break the axis for the rest, so it is left out of the drawing
    series = [Series(s.label, [(t, v) for t, v in s.points if abs(v) <= PLOTTABLE]) for s in series]
    drawn = [s for s in series if s.points]
    if not drawn:
        raise ValueError("nothing to plot: every series is empty")
    ts = [t for s in drawn for t, _ in s.points]
    vs = [v for s in drawn for _, v in s.points]
    t0, t1 = min(ts), max(ts)
    if t1 == t0:
        t0, t1 = t0 - HOUR, t1 + HOUR
    yticks = nice_ticks(min(vs), max(vs))
    y0, y1 = yticks[0], yticks[-1]
    left, right, top, bottom = 64, 16, 36 if title else 16, 56
    pw, ph = width - left - right, height - top - bottom

    def x(t: float) -> float:
        return left + (t - t0) / (t1 - t0) * pw

    def y(v: float) -> float:
        return top + (y1 - v) / (y1 - y0) * ph

    label = escape(title or y_label)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}"'
        f' width="{width}" height="{height}" role="img" aria-label="{label}"'
        ' font-family="system-ui, sans-serif" font-size="12" fill="#57606a">',
        f"<title>{label}</title>",
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fff" stroke="#d0d7de"/>',
    ]
    if title:
        out.append(
            f'<text x="{left}" y="22" font-size="14" font-weight="600" fill="#1f2328">'
            f"{escape(title)}</text>"
        )
    digits = _decimals(yticks[1] - yticks[0]) if len(yticks) > 1 else 1
    for v in yticks:
        yy = f"{y(v):.1f}"
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{yy}" y2="{yy}" stroke="{GRID}"/>')
        out.append(f'<text x="{left - 6}" y="{yy}" dy="4" text-anchor="end">{v:.{digits}f}</text>')
    ticks, fmt = _time_ticks(t0, t1)
    for t in ticks:
        xx = f"{x(t):.1f}"
        when = datetime.fromtimestamp(t, UTC).strftime(fmt)
        out.append(f'<line x1="{xx}" x2="{xx}" y1="{top}" y2="{top + ph}" stroke="{GRID}"/>')
        out.append(f'<text x="{xx}" y="{top + ph + 16}" text-anchor="middle">{when}</text>')
    out.append(
        f'<text x="14" y="{top + ph / 2:.0f}" text-anchor="middle"'
        f' transform="rotate(-90 14 {top + ph / 2:.0f})">{escape(y_label)}</text>'
    )
    for m in markers:
        if t0 <= m.ts <= t1:
            xx = f"{x(m.ts):.1f}"
            out.append(
                f'<line class="marker" x1="{xx}" x2="{xx}" y1="{top}" y2="{top + ph}"'
                ' stroke="#cf222e" stroke-dasharray="4 3"/>'
                f'<text x="{xx}" y="{top + 12}" dx="4" fill="#cf222e">{escape(m.label)}</text>'
            )
    for i, s in enumerate(drawn):
        colour = PALETTE[i % len(PALETTE)]
        steps, last = [], None
        for t, v in s.points:
            move = last is None or (gap_s is not None and t - last > gap_s)
            steps.append(f"{'M' if move else 'L'}{x(t):.1f},{y(v):.1f}")
            last = t
        out.append(
            f'<path class="series s{i}" d="{"".join(steps)}" fill="none" stroke="{colour}"'
            f' stroke-width="1.6" stroke-linejoin="round"><title>{escape(s.label)}</title></path>'
        )
    lx, ly = left, height - 12
    for i, s in enumerate(drawn):  # legend in one row under the axis
        colour = PALETTE[i % len(PALETTE)]
        out.append(
            f'<rect x="{lx}" y="{ly - 9}" width="12" height="3" fill="{colour}"/>'
            f'<text x="{lx + 16}" y="{ly - 5}">{escape(s.label)}</text>'
        )
        lx += 24 + 7 * len(s.label)
    out.append("</svg>")
    return "".join(out)
