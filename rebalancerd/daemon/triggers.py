"""APScheduler 3.x triggers that know the NYSE calendar.

Each trigger answers two questions on market-local wall-clock times:
:meth:`MarketTrigger.get_next_fire_time` (APScheduler's contract: the first
fire time at or after ``now``, or after the previous fire time when catching up)
and :meth:`MarketTrigger.latest_at_or_before` (what catch-up needs at start).
Fire times are built with :func:`datetime.combine` in the configured zone, so a
job fires once at its wall-clock time on both sides of a DST change.

The daily guard on an early-close day (the day after Thanksgiving, Christmas
Eve, July 3) still fires at its configured time (16:30 by default): the
session closed at 13:00, so the guard evaluates that day's final 13:00 closing
prices, and its exits are queued for the next open exactly as on a full day.
Moving the guard earlier would buy nothing: its exits cannot trade before the
next open anyway.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger

from rebalancerd.adapters.calendar import NyseCalendar
from rebalancerd.domain.timing import first_trading_day_on_or_after, week_start

#: How far a trigger looks for its next/previous fire time before giving up.
SEARCH_DAYS = 400
_TICK = timedelta(microseconds=1)


def _local(day: date, at: time, tz: ZoneInfo) -> datetime:
    """``at`` on ``day`` in ``tz``, normalised (a time in a DST gap moves forward)."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC).astimezone(tz)


class MarketTrigger(BaseTrigger):  # type: ignore[misc]
    """Base: subclasses say which wall-clock times a local day fires at."""

    def __init__(self, calendar: NyseCalendar, tz: ZoneInfo) -> None:
        self.calendar = calendar
        self.tz = tz

    def times_on(self, day: date) -> list[time]:
        """The wall-clock fire times on ``day`` (sorted; empty when none)."""
        raise NotImplementedError

    def fire_times_on(self, day: date) -> list[datetime]:
        return [_local(day, at, self.tz) for at in self.times_on(day)]

    def next_at_or_after(self, moment: datetime) -> datetime | None:
        day = moment.astimezone(self.tz).date()
        for offset in range(SEARCH_DAYS):
            for fire in self.fire_times_on(day + timedelta(days=offset)):
                if fire >= moment:
                    return fire
        return None

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        day = moment.astimezone(self.tz).date()
        for offset in range(SEARCH_DAYS):
            for fire in reversed(self.fire_times_on(day - timedelta(days=offset))):
                if fire <= moment:
                    return fire
        return None

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """APScheduler's contract (as CronTrigger reads it)."""
        # After a previous fire, the next one strictly after it, even if that is
        # already past (APScheduler then applies coalesce and misfire grace).
        start = now if previous_fire_time is None else previous_fire_time + _TICK
        return self.next_at_or_after(start)

    def describe(self) -> str:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.describe()


class WeeklyTrigger(MarketTrigger):
    """Once a week at ``weekday`` ``at`` (the Saturday review), holidays or not."""

    def __init__(self, weekday: int, at: time, calendar: NyseCalendar, tz: ZoneInfo) -> None:
        super().__init__(calendar, tz)
        self.weekday, self.at = weekday, at

    def times_on(self, day: date) -> list[time]:
        return [self.at] if day.weekday() == self.weekday else []

    def describe(self) -> str:
        return f"weekly[{_DAYS[self.weekday]} {self.at:%H:%M} {self.tz.key}]"


class TradingDayTrigger(MarketTrigger):
    """At ``at`` on every NYSE trading day (the daily guards); see the module docstring
    for early-close days."""

    def __init__(self, at: time, calendar: NyseCalendar, tz: ZoneInfo) -> None:
        super().__init__(calendar, tz)
        self.at = at

    def times_on(self, day: date) -> list[time]:
        return [self.at] if self.calendar.is_trading_day(day) else []

    def describe(self) -> str:
        return f"trading-days[{self.at:%H:%M} {self.tz.key}]"


class ExecutionTrigger(MarketTrigger):
    """The weekly execution: ``weekday`` ``at``, moved to the next trading day when
    that day is closed (Monday holidays) — the same rule as
    :func:`rebalancerd.domain.timing.next_execution`, which stamps ``execute_at``."""

    def __init__(self, weekday: int, at: time, calendar: NyseCalendar, tz: ZoneInfo) -> None:
        super().__init__(calendar, tz)
        self.weekday, self.at = weekday, at

    def planned_day(self, day: date) -> date:
        """The day the execution of ``day``'s week would be without holidays."""
        return week_start(day) + timedelta(days=self.weekday)

    def execution_day(self, day: date) -> date:
        """The day the execution of ``day``'s week actually happens."""
        return first_trading_day_on_or_after(self.planned_day(day), self.calendar)

    def times_on(self, day: date) -> list[time]:
        if not self.calendar.is_trading_day(day):
            return []
        # A week fully closed up to Friday pushes its execution into the next week.
        for week in (week_start(day), week_start(day) - timedelta(days=7)):
            if self.execution_day(week) == day:
                return [self.at]
        return []

    def describe(self) -> str:
        return f"execution[{_DAYS[self.weekday]} {self.at:%H:%M} {self.tz.key}, first trading day]"


class MarketHoursTrigger(MarketTrigger):
    """Every ``interval`` while the market is open (the order dispatcher).

    Fires at open + interval, open + 2 × interval, ... strictly before the close
    (13:00 on early-close days); the open itself belongs to the execution job.
    """

    def __init__(self, interval: timedelta, calendar: NyseCalendar, tz: ZoneInfo) -> None:
        if interval <= timedelta(0):
            raise ValueError("interval must be positive")
        super().__init__(calendar, tz)
        self.interval = interval

    def times_on(self, day: date) -> list[time]:
        if not self.calendar.is_trading_day(day):
            return []
        opening = datetime.combine(day, self.calendar.market_open(day))
        closing = datetime.combine(day, self.calendar.market_close(day))
        out: list[time] = []
        moment = opening + self.interval
        while moment < closing:
            out.append(moment.time())
            moment += self.interval
        return out

    def describe(self) -> str:
        return f"market-hours[every {int(self.interval.total_seconds())}s {self.tz.key}]"


class ShiftedTrigger(BaseTrigger):  # type: ignore[misc]
    """Runs ``inner`` on a clock shifted by ``offset`` (``rebalancerd run --now``).

    The scheduler lives in real time; ``inner`` is asked in virtual time
    (real + offset) and its answer is moved back to real time.
    """

    def __init__(self, inner: MarketTrigger, offset: timedelta) -> None:
        self.inner, self.offset = inner, offset

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        prev = None if previous_fire_time is None else previous_fire_time + self.offset
        fire = self.inner.get_next_fire_time(prev, now + self.offset)
        return None if fire is None else fire - self.offset

    def __str__(self) -> str:
        return f"{self.inner} shifted {self.offset}"


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
