"""The monthly report's PDF: the page's sections (headings, SVG charts, tables, notes) written
to A4 by fpdf2, pure Python.

fpdf2 draws the SVG charts as vector graphics and embeds the subset of the CJK font the text
uses. The font is found at run time (:func:`find_cjk_font`: ``fc-match``, then the paths of
Debian's ``fonts-noto-cjk``) and registered under the family name the charts ask for first
(``report_charts.FONT``), so the charts' Chinese is drawn with it too. Without a CJK font the
PDF is still written, in a built-in font with the English half of every label
(:func:`latin`), a note on its first page saying why, and a warning in the log.
"""

from __future__ import annotations

import functools
import io
import logging
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from fpdf import FPDF
from fpdf.fonts import FontFace

from cloud.ticketing.web import font_cache
from cloud.ticketing.web.report_charts import FONT

log = logging.getLogger(__name__)

FontFile = tuple[Path, int]  # a font file and, for a collection (.ttc), the face's index
CJK_PATHS = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf"),
)
SC_FACE = 2  # Simplified Chinese in Debian's NotoSansCJK-Regular.ttc
NO_CJK_NOTE = (
    "Note: no CJK font is installed on the server (apt-get install fonts-noto-cjk), so the "
    "Chinese labels are left out of this PDF."
)
INK, MUTED, ACCENT = (31, 35, 40), (87, 96, 106), (9, 105, 218)


class TableLike(Protocol):
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    widths: tuple[int, ...]


class SectionLike(Protocol):
    heading: str
    charts: tuple[str, ...]
    tables: tuple[TableLike, ...]
    notes: tuple[str, ...]


@functools.cache
def find_cjk_font() -> FontFile | None:
    """A font with Simplified Chinese glyphs (Noto Sans CJK SC), or None; looked up once."""
    if shutil.which("fc-match"):
        try:
            found = subprocess.run(
                ["fc-match", "-f", "%{file}\t%{index}\t%{family}", "Noto Sans CJK SC:lang=zh-cn"],
                capture_output=True, text=True, timeout=10, check=False,
            ).stdout.split("\t")  # fmt: skip
            # fc-match always answers with something: only a CJK face will do
            if len(found) == 3 and "CJK" in found[2] and Path(found[0]).is_file():
                return Path(found[0]), int(found[1] or 0)
        except (OSError, ValueError, subprocess.SubprocessError):
            pass  # try the known paths
    for path in CJK_PATHS:
        if path.is_file():
            return path, SC_FACE if path.suffix == ".ttc" else 0
    log.warning(
        "no CJK font found (fc-match, %s): report PDFs show English labels only; "
        "install one with: apt-get install fonts-noto-cjk",
        ", ".join(map(str, CJK_PATHS)),
    )
    return None


_LATIN = str.maketrans({"—": "-", "–": "-", "≤": "<=", "…": "...", "→": "->", "·": "-"})


def latin(text: str) -> str:
    """``text`` for a built-in PDF font (Latin-1): the Chinese half of a bilingual label, and
    anything else outside Latin-1, left out.

    >>> latin("问题类型占比 / Problem types"), latin("cooling_decline 制冷下降"), latin("≤3 — x")
    ('Problem types', 'cooling_decline', '<=3 - x')
    >>> latin("平均满意度（近12个月） / Mean score, last 12 months")
    'Mean score, last 12 months'
    """
    chinese, bilingual, english = text.partition(" / ")
    if bilingual and any(ord(c) > 0x2E7F for c in chinese):
        text = english
    kept = "".join(c for c in text.translate(_LATIN) if ord(c) < 256)
    return re.sub(r"\s+", " ", kept).strip(" /")


def _latin_svg(svg: str) -> str:
    """A chart for a built-in PDF font: its texts as :func:`latin` makes them."""
    texts = re.sub(r">([^<]+)<", lambda m: f">{latin(m[1])}<", svg)
    return "".join(c for c in texts.translate(_LATIN) if ord(c) < 256)


def _all_text(title: str, subtitle: str, sections: Sequence[SectionLike]) -> str:
    """Every character the document will draw (the charts' texts included)."""
    parts = [title, subtitle]
    for s in sections:
        parts += [s.heading, *s.notes]
        parts += [c for t in s.tables for row in (t.head, *t.rows) for c in row]
        parts += [m for svg in s.charts for m in re.findall(r">([^<]+)<", svg)]
    return "".join(parts)


def _height_mm(svg: str, width_mm: float) -> float:
    """How tall ``svg`` is drawn ``width_mm`` wide."""
    size = re.search(r'width="(\d+)" height="(\d+)"', svg)
    return width_mm * int(size[2]) / int(size[1]) if size else width_mm / 2


def write_pdf(
    title: str,
    subtitle: str,
    sections: Sequence[SectionLike],
    font: FontFile | None = None,
) -> bytes:
    """An A4 PDF of ``sections`` under ``title``; ``font`` (default :func:`find_cjk_font`)
    draws the Chinese — through its common characters' small face when that is cut and has
    every character of the document (``font_cache.py``)."""
    font = font or find_cjk_font()
    if font is not None:
        small = font_cache.common_face(font)
        if small is not None and font_cache.covers(small, _all_text(title, subtitle, sections)):
            font = small
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=14)
    pdf.set_title(latin(title))
    pdf.set_creator("qloop")
    fix: Callable[[str], str] = str
    if font is not None:
        family = FONT.split(",")[0].strip()  # the name the charts ask for
        pdf.add_font(family, fname=str(font[0]), collection_font_number=font[1])
    else:
        family, fix = "helvetica", latin
    pdf.add_page()
    width = pdf.epw

    def text(value: str, size: float, colour: tuple[int, int, int] = INK) -> None:
        pdf.set_font(family, size=size)
        pdf.set_text_color(*colour)
        pdf.multi_cell(width, size * 0.5, fix(value), new_x="LMARGIN", new_y="NEXT")

    text(title, 16)
    text(subtitle, 11, MUTED)
    if font is None:
        text(NO_CJK_NOTE, 9, (164, 14, 38))
    head = FontFace(emphasis=None, fill_color=(246, 248, 250), color=MUTED)  # no bold face
    for s in sections:
        pdf.ln(3)
        first = _height_mm(s.charts[0], width) if s.charts else 30.0
        if pdf.will_page_break(10 + first):  # a heading stays with what it heads
            pdf.add_page()
        text(s.heading, 13, ACCENT)
        for svg in s.charts:
            if pdf.will_page_break(_height_mm(svg, width)):
                pdf.add_page()
            drawn = svg if font is not None else _latin_svg(svg)
            pdf.image(io.BytesIO(drawn.encode()), w=width)
        for t in s.tables:
            pdf.set_font(family, size=8.5)
            pdf.set_text_color(*INK)
            with pdf.table(
                col_widths=t.widths, headings_style=head, line_height=4.6, text_align="LEFT"
            ) as table:
                for row in (t.head, *t.rows):
                    cells = table.row()
                    for c in row:
                        cells.cell(fix(c))
            pdf.ln(1)
        for note in s.notes:
            text(note, 8.5, MUTED)
    return bytes(pdf.output())
