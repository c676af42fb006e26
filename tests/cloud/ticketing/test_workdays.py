"""Working days on the team's calendar (cloud/ticketing/workdays.py): its time zone, its public
holidays and make-up working days, the holiday files shipped in deploy/holidays/, and the
callback deadline and settings that use them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cloud.ticketing.sla import SlaPolicy, Stage
from cloud.ticketing.workdays import CalendarError, WorkCalendar, parse_calendar
from qloop.loading import load
from qloop.settings import SettingsError

CST = ZoneInfo("Asia/Shanghai")
HOLIDAYS = Path(__file__).parents[3] / "deploy" / "holidays"


def test_the_weekday_is_the_teams_not_utcs() -> None:
    # Friday 20:00 UTC is Saturday 04:00 in Shanghai: one working day later is Monday there
    friday_night = datetime(2026, 12, 4, 20, tzinfo=UTC)
    shanghai = WorkCalendar("Asia/Shanghai").add_working_days(friday_night, 1)
    london = WorkCalendar("UTC").add_working_days(friday_night, 1)
    assert shanghai.astimezone(CST) == datetime(2026, 12, 7, 4, tzinfo=CST)
    assert london == datetime(2026, 12, 7, 20, tzinfo=UTC)  # Friday there: Monday, 20:00
    assert shanghai.tzinfo == UTC  # given back in the zone it was asked in


def test_the_spring_festival_and_its_make_up_saturdays() -> None:
    cal = parse_calendar((HOLIDAYS / "cn-2026.txt").read_text(encoding="utf-8"))
    # verified on Friday 13 February 2026: Saturday the 14th is worked, then nine days off
    verified = datetime(2026, 2, 13, 10, tzinfo=CST)
    assert cal.add_working_days(verified, 1) == datetime(2026, 2, 14, 10, tzinfo=CST)
    assert cal.add_working_days(verified, 2) == datetime(2026, 2, 24, 10, tzinfo=CST)
    assert cal.add_working_days(verified, 3) == datetime(2026, 2, 25, 10, tzinfo=CST)
    # without the calendar the same count ends during the holiday
    assert WorkCalendar().add_working_days(verified, 3) == datetime(2026, 2, 18, 10, tzinfo=CST)


@pytest.mark.parametrize("name", sorted(p.name for p in HOLIDAYS.glob("*.txt")))
def test_every_shipped_holiday_file_reads_and_is_plausible(name: str) -> None:
    cal = parse_calendar((HOLIDAYS / name).read_text(encoding="utf-8"))
    years = {d.year for d in cal.holidays | cal.workdays}
    assert len(years) == 1
    # mainland China: 11 days of statutory holidays at least, weekends (only) worked instead
    weekdays_off = [d for d in cal.holidays if d.weekday() < 5]
    assert len(weekdays_off) >= 11
    assert all(d.weekday() >= 5 for d in cal.workdays)
    assert date(years.pop(), 10, 1) in cal.holidays


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-10-01 of", "line 1: '2026-10-01 of' is not"),
        ("2026-02-30 off", "line 1: day is out of range"),
        ("\n2026-10-07..2026-10-01 off", "line 2: 2026-10-07..2026-10-01 is not a run"),
        ("2026-01-01..2026-03-01 off", "is not a run of up to a month"),
        ("2026-10-10 off\n2026-10-10 work", "2026-10-10 is both a holiday and a working day"),
    ],
)
def test_a_bad_holiday_file_says_which_line_and_why(text: str, message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        parse_calendar(text)


def test_a_calendar_with_no_working_day_left_is_refused_not_looped() -> None:
    start = date(2026, 1, 1)
    always_off = frozenset(start + timedelta(days=i) for i in range(800))
    with pytest.raises(CalendarError, match="no working day within"):
        WorkCalendar(holidays=always_off).add_working_days(datetime(2026, 1, 1, tzinfo=CST), 1)


def test_the_callback_deadline_counts_the_calendar() -> None:
    cal = parse_calendar("2025-10-01..2025-10-08 off\n2025-10-11 work")
    sla = SlaPolicy(calendar=cal)
    verified = datetime(2025, 9, 30, 9, tzinfo=CST)  # Tuesday, the eve of the holiday
    due = sla.due(Stage.CALLBACK, "normal", verified, verified)
    assert due == datetime(2025, 10, 11, 9, tzinfo=CST)  # Thu 9th, Fri 10th, worked Sat 11th
    assert SlaPolicy().due(Stage.CALLBACK, "normal", verified, verified).day == 3  # Fri 3rd


def test_the_settings_load_the_holiday_file_or_say_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "holidays.txt"
    path.write_text("2026-10-01..2026-10-07 off\n2026-10-10 work\n", encoding="utf-8")
    s = load("api", {"sla_holidays": str(path)}, environ={})
    assert date(2026, 10, 10) in s.ticket_policy().sla.calendar.workdays
    assert s.ticket_policy().sla.calendar.zone == "Asia/Shanghai"

    with pytest.raises(SettingsError, match="--sla-holidays .*cannot read"):
        load("api", {"sla_holidays": str(tmp_path / "none.txt")}, environ={}).ticket_policy()
    path.write_text("2026-10-01 maybe\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="line 1"):
        load("api", {"sla_holidays": str(path)}, environ={}).ticket_policy()
    with pytest.raises(SettingsError, match="unknown time zone 'Mars/Base'"):
        load("api", {"sla_work_zone": "Mars/Base"}, environ={}).ticket_policy()
