"""The NYSE calendar, 2026–2028, checked against NYSE's published schedule.

Full closures are NYSE's published holidays for 2026–2028. Early closes
(13:00) follow NYSE's standing practice, as published for 2026 and 2027 and
assumed for 2028 (NYSE publishes three years ahead; the 2028 early closes are
derived from the same rules):

* 2026: July 4 is a Saturday, so Friday July 3 is the observed holiday and
  Thursday July 2 is a full day (as in 2015 and 2020); early closes are the
  day after Thanksgiving (Nov 27) and Christmas Eve (Thursday Dec 24).
* 2027: July 4 is a Sunday (observed Monday July 5) and Christmas a Saturday
  (observed Friday Dec 24): no July or December early close, as in 2021; only
  the day after Thanksgiving (Nov 26).
* 2028: New Year's Day is a Saturday and is *not* observed on Friday
  Dec 31, 2027 (NYSE rule: the end of an accounting period stays open);
  July 3 (Monday, before a Tuesday July 4) and Nov 24 close early; Christmas
  Eve is a Sunday, so no December early close.
"""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest

from rebalancerd.adapters.calendar import NyseCalendar
from rebalancerd.ports import TradingCalendar

HOLIDAYS = {
    # 2026
    date(2026, 1, 1): "New Year's Day",
    date(2026, 1, 19): "Martin Luther King Jr. Day",
    date(2026, 2, 16): "Washington's Birthday",
    date(2026, 4, 3): "Good Friday",
    date(2026, 5, 25): "Memorial Day",
    date(2026, 6, 19): "Juneteenth National Independence Day",
    date(2026, 7, 3): "Independence Day (observed)",  # July 4 is a Saturday
    date(2026, 9, 7): "Labor Day",
    date(2026, 11, 26): "Thanksgiving Day",
    date(2026, 12, 25): "Christmas Day",
    # 2027
    date(2027, 1, 1): "New Year's Day",
    date(2027, 1, 18): "Martin Luther King Jr. Day",
    date(2027, 2, 15): "Washington's Birthday",
    date(2027, 3, 26): "Good Friday",
    date(2027, 5, 31): "Memorial Day",
    date(2027, 6, 18): "Juneteenth National Independence Day (observed)",  # Sat June 19
    date(2027, 7, 5): "Independence Day (observed)",  # Sun July 4
    date(2027, 9, 6): "Labor Day",
    date(2027, 11, 25): "Thanksgiving Day",
    date(2027, 12, 24): "Christmas Day (observed)",  # Sat Dec 25
    # 2028 (Jan 1 is a Saturday: no New Year's holiday, see the module doc)
    date(2028, 1, 17): "Martin Luther King Jr. Day",
    date(2028, 2, 21): "Washington's Birthday",
    date(2028, 4, 14): "Good Friday",
    date(2028, 5, 29): "Memorial Day",
    date(2028, 6, 19): "Juneteenth National Independence Day",
    date(2028, 7, 4): "Independence Day",
    date(2028, 9, 4): "Labor Day",
    date(2028, 11, 23): "Thanksgiving Day",
    date(2028, 12, 25): "Christmas Day",
}

EARLY_CLOSES = {date(2026, 11, 27), date(2026, 12, 24), date(2027, 11, 26)} | {
    date(2028, 7, 3),
    date(2028, 11, 24),
}


@pytest.fixture
def cal() -> NyseCalendar:
    return NyseCalendar()


def all_days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


@pytest.mark.parametrize(("day", "name"), sorted(HOLIDAYS.items()))
def test_holidays(cal: NyseCalendar, day: date, name: str) -> None:
    assert not cal.is_trading_day(day)
    assert cal.holiday_name(day) == name
    assert cal.early_close(day) is None


def test_whole_table_2026_2028(cal: NyseCalendar) -> None:
    """Every weekday not in the table is a trading day; no other holiday exists."""
    for day in all_days(date(2026, 1, 1), date(2028, 12, 31)):
        if day.weekday() >= 5:
            assert not cal.is_trading_day(day), day
            assert cal.holiday_name(day) == "weekend", day
        else:
            assert cal.is_trading_day(day) == (day not in HOLIDAYS), day
        assert (cal.early_close(day) is not None) == (day in EARLY_CLOSES), day


def test_trading_days_per_year(cal: NyseCalendar) -> None:
    counts = {
        year: sum(cal.is_trading_day(d) for d in all_days(date(year, 1, 1), date(year, 12, 31)))
        for year in (2026, 2027, 2028)
    }
    assert counts == {2026: 251, 2027: 251, 2028: 251}


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 7, 2),  # July 4 on Saturday: no early close the day before the holiday
        date(2027, 7, 2),  # July 4 on Sunday
        date(2027, 12, 23),  # Christmas observed Friday Dec 24
        date(2027, 12, 31),  # New Year's 2028 falls on Saturday: not observed here
    ],
)
def test_full_days_around_weekend_holidays(cal: NyseCalendar, day: date) -> None:
    assert cal.is_trading_day(day)
    assert cal.early_close(day) is None
    assert cal.market_close(day) == time(16, 0)


@pytest.mark.parametrize("day", sorted(EARLY_CLOSES))
def test_early_closes(cal: NyseCalendar, day: date) -> None:
    assert cal.is_trading_day(day)
    assert cal.early_close(day) == time(13, 0)
    assert cal.market_open(day) == time(9, 30)
    assert cal.market_close(day) == time(13, 0)


def test_ordinary_session(cal: NyseCalendar) -> None:
    day = date(2026, 11, 30)
    assert (cal.market_open(day), cal.market_close(day)) == (time(9, 30), time(16, 0))
    assert cal.holiday_name(day) is None


def test_weekend_names(cal: NyseCalendar) -> None:
    assert cal.holiday_name(date(2026, 11, 28)) == "weekend"
    assert cal.holiday_name(date(2026, 7, 4)) == "weekend"  # the holiday is observed July 3


def test_extra_closures() -> None:
    cal = NyseCalendar(extra_closures=[date(2026, 12, 1), date(2026, 11, 27)])
    assert not cal.is_trading_day(date(2026, 12, 1))
    assert cal.holiday_name(date(2026, 12, 1)) == "extra closure"
    assert cal.early_close(date(2026, 11, 27)) is None  # closed, not closing early
    assert cal.next_trading_day(date(2026, 11, 25)) == date(2026, 11, 30)
    assert cal.next_trading_day(date(2026, 11, 30)) == date(2026, 12, 2)
    assert NyseCalendar().is_trading_day(date(2026, 12, 1))


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 1, 16), date(2026, 1, 20)),  # Fri → Tue over MLK weekend
        (date(2026, 1, 17), date(2026, 1, 20)),  # from a Saturday
        (date(2026, 4, 2), date(2026, 4, 6)),  # Good Friday
        (date(2026, 7, 2), date(2026, 7, 6)),  # observed Independence Day
        (date(2026, 12, 31), date(2027, 1, 4)),  # across the year and New Year's Day
        (date(2027, 12, 23), date(2027, 12, 27)),
        (date(2027, 12, 30), date(2027, 12, 31)),
        (date(2026, 11, 30), date(2026, 12, 1)),  # ordinary: strictly after
    ],
)
def test_next_trading_day(cal: NyseCalendar, day: date, expected: date) -> None:
    assert cal.next_trading_day(day) == expected


@pytest.mark.parametrize(
    ("monday", "expected"),
    [
        (date(2026, 11, 30), date(2026, 11, 30)),
        (date(2026, 1, 19), date(2026, 1, 20)),  # MLK Monday
        (date(2026, 5, 25), date(2026, 5, 26)),  # Memorial Day
        (date(2026, 9, 9), date(2026, 9, 8)),  # any day means its week (Labor Day week)
        (date(2028, 6, 19), date(2028, 6, 20)),  # Juneteenth on a Monday
    ],
)
def test_first_trading_day_of_week(cal: NyseCalendar, monday: date, expected: date) -> None:
    assert cal.first_trading_day_of_week(monday) == expected


def test_first_trading_day_of_a_closed_week() -> None:
    week = all_days(date(2026, 12, 7), date(2026, 12, 11))
    assert NyseCalendar(extra_closures=week).first_trading_day_of_week(week[0]) is None


def test_is_a_trading_calendar(cal: NyseCalendar) -> None:
    typed: TradingCalendar = cal
    assert typed.is_trading_day(date(2026, 11, 30))
