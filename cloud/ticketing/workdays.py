"""Working days as the quality team counts them: in its own time zone, without its public holidays,
with the make-up working days (调休) that come with them.

A deadline in working days ("call the customer back within 3 working days") is counted on the
team's calendar, not in UTC: a fix verified on Friday at 20:00 UTC is verified on Saturday at 04:00
in Shanghai, and the count starts on Monday there. China moves weekends around its public
holidays each year (the State Council's notice: e.g. the Spring Festival off for nine days, with a
Saturday before and after worked instead), so a day is a working day when the calendar says so
(``workdays``), else when it is Monday to Friday and not a holiday (``holidays``).

qloop does not ship a year's holidays as a default: they are published a year at a time and an
out-of-date list is worse than none. An operator loads them from a file (``QLOOP_HOLIDAYS``; the
format is :func:`parse_calendar`'s; ``deploy/holidays/`` holds the years transcribed so far);
without one, Monday to Friday are the working days.

Pure: dates and times in, dates and times out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contract.errors import QloopError

_LINE = re.compile(
    r"^(?P<first>\d{4}-\d{2}-\d{2})(?:\s*\.\.\s*(?P<last>\d{4}-\d{2}-\d{2}))?\s+(?P<kind>off|work)\b"
)
_MAX_SPAN_DAYS = 31  # a holiday run longer than a month is a typo, not a holiday
_MAX_OFF_RUN = 366  # days without a working day before a calendar is called broken


class CalendarError(QloopError, ValueError):
    """A holiday file that cannot be read as one; says which line and why."""


@dataclass(frozen=True, slots=True)
class WorkCalendar:
    """Which days are working days, in ``zone`` (an IANA time zone name)."""

    zone: str = "Asia/Shanghai"
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)  # weekend days worked (调休)

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise CalendarError(f"unknown time zone {self.zone!r}") from None
        if both := self.holidays & self.workdays:
            raise CalendarError(f"{min(both)} is both a holiday and a working day")

    def is_working(self, day: date) -> bool:
        """Whether ``day`` is a working day.

        >>> cal = WorkCalendar(holidays=frozenset({date(2025, 10, 1)}),
        ...                    workdays=frozenset({date(2025, 9, 28)}))
        >>> [cal.is_working(date(2025, 9, d)) for d in (26, 27, 28)]  # Fri, Sat, Sun worked
        [True, False, True]
        >>> cal.is_working(date(2025, 10, 1))  # a Wednesday off
        False
        """
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """``days`` working days after ``start`` (aware), at the same local time of day; from a
        day off the count starts on the next working day. The result is in ``start``'s zone.

        >>> from datetime import UTC
        >>> cal, cst = WorkCalendar(), ZoneInfo("Asia/Shanghai")
        >>> cal.add_working_days(datetime(2026, 12, 3, 9, tzinfo=cst), 3).strftime("%a %d %H")
        'Tue 08 09'
        >>> friday_night = datetime(2026, 12, 4, 20, tzinfo=UTC)  # Saturday 04:00 in Shanghai
        >>> cal.add_working_days(friday_night, 1).astimezone(cst).strftime("%a %d %H")
        'Mon 07 04'
        """
        local = start.astimezone(ZoneInfo(self.zone))
        day = local.date()
        for _ in range(days + _MAX_OFF_RUN):
            if days <= 0 and self.is_working(day):
                break
            day += timedelta(days=1)
            if self.is_working(day):
                days -= 1
        else:
            raise CalendarError(f"no working day within {_MAX_OFF_RUN} days of {day}")
        at = datetime.combine(day, local.timetz().replace(tzinfo=None), ZoneInfo(self.zone))
        return at.astimezone(start.tzinfo)


def parse_calendar(text: str, zone: str = "Asia/Shanghai") -> WorkCalendar:
    """A calendar from lines ``DATE off|work [name]`` or ``FIRST..LAST off|work [name]``;
    ``#`` starts a comment.

    >>> cal = parse_calendar('''
    ... 2025-10-01..2025-10-08 off 国庆节、中秋节
    ... 2025-09-28 work  # Sunday worked
    ... ''')
    >>> len(cal.holidays), sorted(cal.workdays)
    (8, [datetime.date(2025, 9, 28)])
    """
    holidays: set[date] = set()
    workdays: set[date] = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = _LINE.match(line)
        if m is None:
            raise CalendarError(f"line {number}: {raw.strip()!r} is not 'YYYY-MM-DD off|work'")
        try:
            first = date.fromisoformat(m["first"])
            last = date.fromisoformat(m["last"]) if m["last"] else first
        except ValueError as e:
            raise CalendarError(f"line {number}: {e}") from None
        if not 0 <= (last - first).days <= _MAX_SPAN_DAYS:
            raise CalendarError(f"line {number}: {first}..{last} is not a run of up to a month")
        days = {first + timedelta(days=i) for i in range((last - first).days + 1)}
        (holidays if m["kind"] == "off" else workdays).update(days)
    return WorkCalendar(zone, frozenset(holidays), frozenset(workdays))
