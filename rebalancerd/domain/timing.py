"""Market-local dates, ISO weeks and execution times (SPEC §3, §14).

Every calendar date is taken in the configured timezone; instants are aware.
The trading calendar is passed in (a port), so these stay pure.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class TradingDays(Protocol):
    def is_trading_day(self, day: date) -> bool: ...


MARKET_OPEN = time(9, 30)


def market_date(now: datetime, tz: ZoneInfo) -> date:
    """Today's date where the market is, whatever the machine's zone."""
    if now.tzinfo is None:
        raise ValueError("naive datetime: pass an aware 'now'")
    return now.astimezone(tz).date()


def week_start(day: date) -> date:
    """Monday of the week (Monday 00:00 – Sunday 24:00) that contains ``day``."""
    return day - timedelta(days=day.weekday())


def at_local(day: date, at: time, tz: ZoneInfo) -> datetime:
    """An aware instant for a wall-clock time on a market-local day (DST-safe)."""
    return datetime.combine(day, at, tzinfo=tz)


def first_trading_day_on_or_after(day: date, calendar: TradingDays, limit: int = 14) -> date:
    for offset in range(limit):
        candidate = day + timedelta(days=offset)
        if calendar.is_trading_day(candidate):
            return candidate
    raise ValueError(f"no trading day within {limit} days of {day}")


def next_execution(
    now: datetime,
    tz: ZoneInfo,
    calendar: TradingDays,
    *,
    weekday: int = 0,
    at: time = MARKET_OPEN,
) -> datetime:
    """The next weekly execution: the week's ``weekday`` (Monday) at ``at``, moved to
    the next trading day when that is a holiday; this week's if still ahead, else
    next week's (SPEC §14 ``execute_at``)."""
    monday = week_start(market_date(now, tz))
    for week in (monday, monday + timedelta(days=7), monday + timedelta(days=14)):
        day = first_trading_day_on_or_after(week + timedelta(days=weekday), calendar)
        candidate = at_local(day, at, tz)
        if candidate > now:
            return candidate
    raise ValueError("no execution found within three weeks")  # pragma: no cover


def next_market_open(now: datetime, tz: ZoneInfo, calendar: TradingDays) -> datetime:
    """The next 09:30 open strictly after ``now`` (a daily guard's ``execute_at``)."""
    day = market_date(now, tz)
    for offset in range(15):
        candidate_day = day + timedelta(days=offset)
        if not calendar.is_trading_day(candidate_day):
            continue
        candidate = at_local(candidate_day, MARKET_OPEN, tz)
        if candidate > now:
            return candidate
    raise ValueError(f"no market open within 15 days of {day}")  # pragma: no cover


def slot_week(execute_at: datetime, tz: ZoneInfo) -> date:
    """The week an exit counts in: that of its scheduled execution (SPEC §3)."""
    return week_start(market_date(execute_at, tz))
