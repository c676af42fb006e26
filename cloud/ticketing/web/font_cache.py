"""A small CJK font for the report PDFs: the common characters of the full font, cut once and
kept on disk.

The full Noto Sans CJK face has some 65,000 glyphs: fpdf2 reads it in about 0.5 s and cuts each
PDF's subset from it in about 0.9 s more, for every PDF. A report's text is the catalogue's
Chinese, numbers and Latin identifiers, so a face of GB 2312's characters plus Latin, Greek and
the usual punctuation (about 8,300 glyphs, 1.6 MB) draws it, and fpdf2 then needs about 0.08 s.

Cutting it takes about 10 s, so :func:`common_face` starts the cut in a background thread on
first use and answers None until it is on disk (the PDFs written meanwhile use the full font);
it is kept in ``$XDG_CACHE_HOME/qloop`` (``~/.cache/qloop``) under a name that changes with the
source file, written to a temporary name and renamed, so processes never read half a font. A
document with a character the small face lacks is written with the full font
(:func:`covers`).
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
import threading
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

log = logging.getLogger(__name__)

FontFile = tuple[Path, int]  # a font file and, for a collection (.ttc), the face's index
_EXTRA = "≤≥∞−→←↑↓ΔαβγμσΩ°·…—–‰€£¥©®™✓✗"
_building: set[Path] = set()
_lock = threading.Lock()


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qloop"


def common_characters() -> str:
    """GB 2312 (the simplified characters in common use and their punctuation), Latin-1 and
    Latin Extended-A, general punctuation, CJK and full-width forms, and a few symbols."""
    chars = {chr(c) for c in range(0x20, 0x250)} | {chr(c) for c in range(0x2000, 0x2070)}
    chars |= {chr(c) for c in range(0x3000, 0x3040)} | {chr(c) for c in range(0xFF00, 0xFFF0)}
    for b1 in range(0xA1, 0xF8):
        for b2 in range(0xA1, 0xFF):
            try:
                chars.add(bytes((b1, b2)).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return "".join(sorted(chars | set(_EXTRA)))


def cached_path(full: FontFile) -> Path:
    path, face = full
    stat = path.stat()
    return cache_dir() / f"{path.stem}-{face}-{stat.st_size}-{stat.st_mtime_ns}-common.otf"


def cut(full: FontFile, target: Path) -> None:
    """Write the common characters of ``full`` to ``target`` (atomically)."""
    font = TTFont(str(full[0]), fontNumber=full[1], lazy=True)
    options = subset.Options()
    options.desubroutinize = True  # what makes fpdf2's own subsetting fast afterwards
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.layout_features = []
    options.hinting = False
    cutter = subset.Subsetter(options)
    cutter.populate(text=common_characters())
    cutter.subset(font)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, suffix=".partial")
    os.close(fd)
    try:
        font.save(temporary)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _cut_in_background(full: FontFile, target: Path) -> None:
    try:
        cut(full, target)
        log.info("cut the report font's common characters to %s", target)
    except Exception as e:  # noqa: BLE001 - the full font keeps working
        log.warning("could not cut a small report font from %s: %s", full[0], e)
    finally:
        with _lock:
            _building.discard(target)


def common_face(full: FontFile, *, wait: bool = False) -> FontFile | None:
    """The small face cut from ``full`` if it is on disk; else start cutting it (``wait``: and
    wait for it) and answer None."""
    try:
        target = cached_path(full)
    except OSError:
        return None
    if target.is_file():
        return target, 0
    with _lock:
        if target in _building and not wait:
            return None
        _building.add(target)
    if wait:
        _cut_in_background(full, target)
        return (target, 0) if target.is_file() else None
    threading.Thread(target=_cut_in_background, args=(full, target), daemon=True).start()
    return None


@functools.lru_cache(maxsize=4)
def _characters_of(path: Path) -> frozenset[str]:
    return frozenset(chr(c) for c in TTFont(str(path), lazy=True).getBestCmap())


def covers(font: FontFile, text: str) -> bool:
    """Whether ``font`` has a glyph for every character of ``text`` (whitespace aside)."""
    have = _characters_of(font[0])
    return all(c in have for c in set(text) if not c.isspace())
