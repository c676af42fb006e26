"""The monthly report's charts: shares as bars, trends as lines, faults as a Pareto chart.

Pure code, values in and one self-contained SVG string out, like ``chart.py`` (whose tick and
colour helpers these reuse). The same SVG is inlined in the page and drawn into the PDF by
fpdf2, so they use only what both understand: ``rect``, ``line``, ``path``, ``circle`` and
``text`` with ``x``/``y``/``text-anchor``/``font-size``/``fill`` — no ``dy``, no transforms, no
bold (the PDF embeds the CJK font's regular face only). Text names the CJK font first
(:data:`FONT`), which the PDF registers under that name; a browser without it falls back.

>>> svg = bar_chart([("performance 性能", 12), ("safety 安全", 3)], title="Problem types")
>>> svg.startswith("<svg") and svg.count('class="bar"') == 2
True
>>> pareto_chart([("a", 5), ("b", 3), ("c", 2)], title="Pareto").count('class="bar"')
3
>>> "<path" in line_chart(["2024-04", "2024-05"], [("score", [4.0, None])], title="t")
False
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from cloud.ticketing.web.chart import GRID, PALETTE, nice_ticks
from cloud.ticketing.web.i18n import tr

FONT = "Noto Sans CJK SC, system-ui, sans-serif"
INK, MUTED, FRAME = "#1f2328", "#57606a", "#d0d7de"
WIDTH = 720
PARETO_BARS = 10  # the rest are one "other" bar


def _open(width: int, height: int, title: str) -> list[str]:
    label = escape(title)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}"'
        f' width="{width}" height="{height}" role="img" aria-label="{label}"'
        f' font-family="{FONT}" font-size="12" fill="{MUTED}">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
        f'<text x="8" y="20" font-size="14" fill="{INK}">{label}</text>',
    ]


def _text(x: float, y: float, text: str, anchor: str = "start", size: int = 12) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}">'
        f"{escape(text)}</text>"
    )


def _short(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _decimals(ticks: Sequence[float]) -> int:
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    return 0 if float(step).is_integer() else 1 if float(step * 10).is_integer() else 2


def bar_chart(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    fmt: str = "{:,.0f}",
    share: bool = True,
    width: int = WIDTH,
) -> str:
    """Horizontal bars, one per ``(label, value)`` in the order given; each bar reads its value
    (``fmt``) and, with ``share``, its share of the total."""
    row, top, left, right = 24, 34, 170, 110
    height = top + row * max(len(items), 1) + 10
    out = _open(width, height, title)
    total = sum(v for _, v in items)
    scale = max((v for _, v in items), default=0) or 1
    plot = width - left - right
    for i, (label, value) in enumerate(items):
        y = top + i * row
        w = plot * value / scale
        out.append(_text(left - 8, y + 15, _short(label, 24), "end"))
        out.append(
            f'<rect class="bar" x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}"'
            f' fill="{PALETTE[0]}"><title>{escape(label)}: {value}</title></rect>'
        )
        note = fmt.format(value) + (f" ({value / total:.1%})" if share and total else "")
        out.append(_text(left + w + 6, y + 15, note))
    if not items:
        out.append(_text(left, top + 15, tr("no data")))
    out.append("</svg>")
    return "".join(out)


def line_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    title: str,
    y_range: tuple[float, float] | None = None,
    width: int = WIDTH,
    height: int = 240,
) -> str:
    """Lines over categories (months, ``labels``); a None value is a gap in its line (a month
    with no responses is not a score of zero). ``y_range`` fixes the value axis (1 to 5 for
    scores); otherwise it starts at zero."""
    left, right, top, bottom = 48, 16, 34, 50
    pw, ph = width - left - right, height - top - bottom
    values = [v for _, vs in series for v in vs if v is not None]
    lo, hi = y_range or (0.0, max(values, default=0.0) or 1.0)
    ticks = nice_ticks(lo, hi)
    y0, y1 = ticks[0], ticks[-1]
    step = pw / max(len(labels) - 1, 1)

    def x(i: int) -> float:
        return left + i * step if len(labels) > 1 else left + pw / 2

    def y(v: float) -> float:
        return top + (y1 - v) / (y1 - y0) * ph

    out = _open(width, height, title)
    digits = _decimals(ticks)
    for v in ticks:
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="{GRID}"/>'
        )
        out.append(_text(left - 6, y(v) + 4, f"{v:.{digits}f}", "end"))
    every = max(1, round(len(labels) / 12))
    for i, label in enumerate(labels):
        if i % every == 0:
            out.append(
                _text(x(i), top + ph + 16, label[2:] if len(label) == 7 else label, "middle", 10)
            )
    for k, (_name, vs) in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        steps, pen_up = [], True
        for i, v in enumerate(vs):
            if v is None:
                pen_up = True
                continue
            steps.append(f"{'M' if pen_up else 'L'}{x(i):.1f},{y(v):.1f}")
            pen_up = False
            out.append(
                f'<circle class="point s{k}" cx="{x(i):.1f}" cy="{y(v):.1f}" r="3"'
                f' fill="{colour}"/>'
            )
        if sum(s.startswith("L") for s in steps):
            out.append(
                f'<path class="series s{k}" d="{"".join(steps)}" fill="none" stroke="{colour}"'
                ' stroke-width="2"/>'
            )
    lx = left
    for k, (name, _) in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        out.append(f'<rect x="{lx}" y="{height - 16}" width="12" height="4" fill="{colour}"/>')
        out.append(_text(lx + 16, height - 11, name, size=11))
        lx += 40 + 8 * len(name)
    out.append("</svg>")
    return "".join(out)


def pareto_chart(
    items: Sequence[tuple[str, int]], *, title: str, width: int = WIDTH, height: int = 280
) -> str:
    """Bars of ``(label, count)`` most first (the rest beyond :data:`PARETO_BARS` as one
    "other" bar) with the cumulative share as a line on a 0-100 % axis and the 80 % mark."""
    ranked = sorted(items, key=lambda it: -it[1])
    if len(ranked) > PARETO_BARS:
        rest = sum(n for _, n in ranked[PARETO_BARS - 1 :])
        ranked = [*ranked[: PARETO_BARS - 1], (tr("other"), rest)]
    left, right, top, bottom = 48, 48, 34, 56
    pw, ph = width - left - right, height - top - bottom
    total = sum(n for _, n in ranked)
    ticks = nice_ticks(0, max([4, *(n for _, n in ranked)]))  # whole tickets: steps of 1 or more
    y1 = ticks[-1] or 1
    out = _open(width, height, title)
    for v in ticks:
        yy = top + ph - v / y1 * ph
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="{GRID}"/>'
        )
        out.append(_text(left - 6, yy + 4, f"{v:.{_decimals(ticks)}f}", "end"))
    for pct in (0, 50, 80, 100):
        out.append(_text(left + pw + 6, top + ph - pct / 100 * ph + 4, f"{pct}%"))
    y80 = top + ph * 0.2
    out.append(
        f'<line x1="{left}" x2="{left + pw}" y1="{y80:.1f}" y2="{y80:.1f}" stroke="#cf222e"'
        ' stroke-dasharray="4 3"/>'
    )
    slot = pw / max(len(ranked), 1)
    steps, running = [], 0
    for i, (label, n) in enumerate(ranked):
        h = n / y1 * ph
        bx = left + i * slot
        out.append(
            f'<rect class="bar" x="{bx + slot * 0.15:.1f}" y="{top + ph - h:.1f}"'
            f' width="{slot * 0.7:.1f}" height="{h:.1f}" fill="{PALETTE[0]}">'
            f"<title>{escape(label)}: {n}</title></rect>"
        )
        out.append(_text(bx + slot / 2, top + ph + 16, _short(label, int(slot / 7)), "middle", 10))
        running += n
        cy = top + ph - (running / total if total else 0) * ph
        steps.append(f"{'L' if steps else 'M'}{bx + slot / 2:.1f},{cy:.1f}")
        out.append(f'<circle cx="{bx + slot / 2:.1f}" cy="{cy:.1f}" r="3" fill="{PALETTE[1]}"/>')
    if len(steps) > 1:
        out.append(
            f'<path class="cumulative" d="{"".join(steps)}" fill="none" stroke="{PALETTE[1]}"'
            ' stroke-width="2"/>'
        )
    if not ranked:
        out.append(_text(left + pw / 2, top + ph / 2, tr("no data"), "middle"))
    legend_y = height - 12
    out.append(f'<rect x="{left}" y="{legend_y - 8}" width="12" height="8" fill="{PALETTE[0]}"/>')
    out.append(_text(left + 16, legend_y, tr("tickets"), size=11))
    out.append(
        f'<rect x="{left + 130}" y="{legend_y - 6}" width="12" height="4" fill="{PALETTE[1]}"/>'
    )
    out.append(_text(left + 146, legend_y, tr("cumulative share"), size=11))
    out.append("</svg>")
    return "".join(out)
