"""The pages in Chinese and English: which language and time zone a request is shown in, and the
words, names and times written in them.

A page's text is English in the code, passed through :func:`tr`, which gives the Chinese of
``zh_cn.MESSAGES`` when the viewer reads Chinese (a missing entry shows the English; a test
checks that every literal given to :func:`tr` in the pages has its entry). Vocabulary values —
faults, categories, severities, departments, statuses, channels — are names of the contract and
stay as they are in the data, the API and English; :func:`name` gives their Chinese names.

The locale of a request is chosen once, by :class:`~cloud.ticketing.web.language.LocaleMiddleware`,
and read through :func:`current` (a context variable, as a request's locale is in Django or
Babel): rendering code does not thread it through every helper. Outside a request (the command
line, tests) :func:`use` sets it for a block.

Choices made here (the issue leaves them open):

- Language: ``?lang=`` (the switch on every page, then remembered in a cookie), else the cookie,
  else the browser's ``Accept-Language`` (any ``zh`` → zh-CN, the only Chinese there is), else
  English — a request with no preference at all comes from a script, not a person's browser.
- Time zone: the pages run no script (their Content-Security-Policy forbids it), so the browser's
  zone cannot be read; the viewer picks one in the page footer (a cookie), else it follows the
  language: China Standard Time (Asia/Shanghai) for Chinese, UTC for English. Every time shown
  names its zone.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cloud.ticketing.web import zh_cn

LANGS = ("zh-CN", "en")
DEFAULT_LANG = "en"
LANG_COOKIE = "qloop_lang"
TZ_COOKIE = "qloop_tz"
#: The zone a language's readers most likely sit in, until they pick one.
LANG_ZONES = {"zh-CN": "Asia/Shanghai", "en": "UTC"}
#: The zones offered in the footer's picker (any IANA name is accepted by ``?tz=``).
ZONES = (
    "Asia/Shanghai", "UTC", "Asia/Hong_Kong", "Asia/Taipei", "Asia/Singapore", "Asia/Tokyo",
    "Asia/Kolkata", "Asia/Dubai", "Europe/London", "Europe/Berlin", "Europe/Moscow",
    "America/New_York", "America/Chicago", "America/Los_Angeles", "America/Sao_Paulo",
    "Australia/Sydney",
)  # fmt: skip
MAX_ZONE_CHARS = 64


def zone(name: str | None) -> ZoneInfo | None:
    """The IANA zone ``name``, or None when it is not one."""
    if not name or len(name) > MAX_ZONE_CHARS or name.startswith(("/", ".")) or ".." in name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class Locale:
    """How one request is shown: ``lang`` (one of :data:`LANGS`), the time ``tz`` and the
    page's own address ``here`` (where the language switch comes back to)."""

    lang: str = DEFAULT_LANG
    tz: tzinfo = field(default=UTC)
    here: str = "/"

    @property
    def zh(self) -> bool:
        return self.lang == "zh-CN"

    @property
    def zone_name(self) -> str:
        return str(getattr(self.tz, "key", None) or self.tz.tzname(None) or "UTC")


# a frozen dataclass: the default is never changed in place
_current: ContextVar[Locale] = ContextVar("qloop_locale", default=Locale())  # noqa: B039


def current() -> Locale:
    """The locale of the request being answered (English and UTC outside one)."""
    return _current.get()


@contextlib.contextmanager
def use(locale: Locale) -> Iterator[Locale]:
    """Render with ``locale`` inside the block."""
    token = _current.set(locale)
    try:
        yield locale
    finally:
        _current.reset(token)


def for_lang(lang: str) -> Locale:
    """The locale of ``lang`` with its default zone (the command line's PDF, tests)."""
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}; one of {', '.join(LANGS)}")
    return Locale(lang, ZoneInfo(LANG_ZONES[lang]))


# --- choosing -----------------------------------------------------------------------------------
def language(tag: str | None) -> str | None:
    """One of :data:`LANGS` for a language tag (``zh``, ``zh-Hans-CN``, ``en-GB``), else None.

    >>> language("zh-TW"), language("en-GB"), language("fr"), language(None)
    ('zh-CN', 'en', None, None)
    """
    primary = (tag or "").strip().lower().split("-")[0]
    return {"zh": "zh-CN", "en": "en"}.get(primary)


def accepted(header: str | None) -> str | None:
    """The language the browser prefers among :data:`LANGS` (``Accept-Language``, q-values
    honoured; a tie keeps the browser's order), else None.

    >>> accepted("en-US,en;q=0.9,zh-CN;q=0.8"), accepted("zh-CN,zh;q=0.9,en;q=0.8")
    ('en', 'zh-CN')
    >>> accepted("fr-FR, zh;q=0.5"), accepted("de"), accepted("en;q=0, zh;q=0.1")
    ('zh-CN', None, 'zh-CN')
    """
    best: tuple[float, int, str] | None = None
    for i, item in enumerate((header or "")[:1000].split(",")):
        tag, _, params = item.partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        lang = language(tag)
        if lang is None or not (0 < q <= 1) or math.isnan(q):
            continue
        if best is None or (-q, i) < (-best[0], best[1]):
            best = (q, i, lang)
    return None if best is None else best[2]


def negotiate(
    *,
    asked: str | None = None,
    cookie: str | None = None,
    accept: str | None = None,
    tz_asked: str | None = None,
    tz_cookie: str | None = None,
    here: str = "/",
) -> Locale:
    """The locale of a request: the language asked for in the query, else the cookie's, else the
    browser's; the zone asked for, else the cookie's, else the language's."""
    lang = language(asked) or language(cookie) or accepted(accept) or DEFAULT_LANG
    tz = zone(tz_asked) or zone(tz_cookie) or ZoneInfo(LANG_ZONES[lang])
    return Locale(lang, tz, here)


# --- words --------------------------------------------------------------------------------------
def tr(text: str, /, **values: object) -> str:
    """``text`` in the viewer's language, its ``{placeholders}`` filled from ``values``.

    >>> with use(for_lang("zh-CN")):
    ...     tr("Sign in"), tr("{n} open", n=3)
    ('登录', '3 个未关闭')
    >>> tr("Sign in")
    'Sign in'
    """
    message = zh_cn.MESSAGES.get(text, text) if current().zh else text
    return message.format(**values) if values else message


def name(kind: str, value: str | None) -> str:
    """A vocabulary value as the viewer reads it: its Chinese name (``cooling_decline`` →
    ``制冷下降``), or in English the value itself or its English label; None is "—"."""
    if value is None:
        return "—"
    names: Mapping[str, str] = (zh_cn.NAMES if current().zh else zh_cn.NAMES_EN).get(kind, {})
    return names.get(value, value)


def names(kind: str, values: Iterable[str]) -> dict[str, str]:
    """``values`` with their names in the viewer's language (a select's options)."""
    return {v: name(kind, v) for v in values}


# --- times --------------------------------------------------------------------------------------
def zone_label(at: datetime) -> str:
    """``UTC``, ``CST`` or ``UTC+05:30``: the zone of a local time, as short as it is clear."""
    abbreviation = at.tzname() or ""
    if abbreviation.isalpha():
        return abbreviation
    offset = at.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def local(at: datetime) -> datetime:
    """``at`` in the viewer's zone (a naive time is taken as UTC)."""
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(current().tz)


def clock(at: datetime) -> str:
    """``2024-05-17 16:00 CST``: a time in the viewer's zone, naming the zone."""
    shown = local(at)
    return f"{shown:%Y-%m-%d %H:%M} {zone_label(shown)}"


def day(at: datetime) -> str:
    """The viewer's calendar day of ``at``."""
    return f"{local(at):%Y-%m-%d}"
