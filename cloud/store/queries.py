"""The Flux queries that ship with qloop (``cloud/store/queries/*.flux``), ready to run.

Each file answers one common question about the data of CONTRACTS.md §2 and declares its
parameters in its header::

    // @param NAME TYPE [= DEFAULT]: what it is

with TYPE one of ``string``, ``time`` and ``duration``. :func:`load_query` checks the values
given, turns each into a Flux literal (strings escaped, times and durations validated, so a
value can never become Flux code) and puts them in front of the query as variable assignments:
the query's text itself is never edited.

>>> q = load_query("device_noise_history", device="ac-1", every="15m")
>>> q.splitlines()[:5]
['bucket = "qloop"', 'device = "ac-1"', 'start = -30d', 'stop = now()', 'every = 15m']
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

QUERY_DIR = Path(__file__).with_name("queries")

_PARAM = re.compile(r"//\s*@param\s+(\w+)\s+(string|time|duration)(?:\s*=\s*(.+?))?\s*:\s*(.*)$")
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_DURATION = re.compile(r"-?(?:\d+(?:ns|us|µs|ms|s|m|h|d|w|mo|y))+\Z")
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)\Z")


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: str  # "string", "time" or "duration"
    default: str | None  # a Flux literal, as written in the file
    doc: str


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    params: tuple[Param, ...]
    text: str


def available() -> list[str]:
    """The names of the shipped queries."""
    return sorted(p.stem for p in QUERY_DIR.glob("*.flux"))


def query(name: str) -> Query:
    """A shipped query with its declared parameters; ValueError for an unknown name."""
    if not _NAME.match(name) or not (QUERY_DIR / f"{name}.flux").is_file():
        raise ValueError(f"no query {name!r}; available: {', '.join(available())}")
    text = (QUERY_DIR / f"{name}.flux").read_text()
    params = []
    for line in text.splitlines():
        if "@param" in line:
            m = _PARAM.match(line.strip())
            if m is None:
                raise ValueError(f"{name}.flux: malformed parameter line {line!r}")
            params.append(Param(m[1], m[2], m[3], m[4]))
    return Query(name, tuple(params), text)


def load_query(name: str, **values: object) -> str:
    """The Flux text of query ``name`` with its parameters set; ValueError on a bad value.

    Strings may be anything (they are escaped). A time is a timezone-aware ``datetime``,
    Unix seconds (``int``/``float``), an RFC 3339 string, ``"now()"`` or a duration relative to
    now (``"-7d"``). A duration is a Flux duration literal (``"15m"``, ``"1h30m"``).
    """
    q = query(name)
    declared = {p.name for p in q.params}
    unknown = sorted(set(values) - declared)
    if unknown:
        raise ValueError(f"query {name!r} has no parameter {', '.join(unknown)}")
    lines = []
    for p in q.params:
        if p.name in values:
            literal = _literal(p, values[p.name])
        elif p.default is not None:
            literal = p.default
        else:
            raise ValueError(f"query {name!r} needs {p.name!r} ({p.doc})")
        lines.append(f"{p.name} = {literal}")
    return "\n".join(lines) + "\n\n" + q.text


def flux_string(text: str) -> str:
    r"""A Flux string literal: backslash, quote and the ``${`` of interpolation escaped.

    >>> print(flux_string('B"1\\ ${x}'))
    "B\"1\\ \${x}"
    """
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
    return f'"{escaped}"'


def _literal(p: Param, x: object) -> str:
    if p.type == "string":
        if not isinstance(x, str):
            raise ValueError(f"{p.name} must be a string, not {type(x).__name__}")
        return flux_string(x)
    if p.type == "duration":
        if not (isinstance(x, str) and _DURATION.match(x)):
            raise ValueError(f"{p.name} must be a Flux duration such as '15m' or '1h', not {x!r}")
        return x
    return _time(p.name, x)


def _time(name: str, x: object) -> str:
    if isinstance(x, datetime):
        if x.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware")
        return x.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return _time(name, datetime.fromtimestamp(x, UTC))
    if isinstance(x, str) and (x == "now()" or _DURATION.match(x) or _RFC3339.match(x)):
        return x
    raise ValueError(f"{name} must be a datetime, Unix seconds, RFC 3339, now() or '-7d': {x!r}")
