"""Which jobs the daemon schedules, when, and what the calendar did to them.

:func:`build_triggers` turns ``[schedule]`` (and ``[daemon]``) into the four
triggers; :func:`catchup_deadline` says until when a missed fire time may still
be caught up; :func:`upcoming` lists the coming fire times with the reason a
day was skipped or moved (``rebalancerd schedule``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from rebalancerd.adapters.calendar import NyseCalendar
from rebalancerd.config.settings import Settings
from rebalancerd.daemon.triggers import (
    ExecutionTrigger,
    MarketHoursTrigger,
    MarketTrigger,
    TradingDayTrigger,
    WeeklyTrigger,
    _local,
)
from rebalancerd.domain.timing import next_market_open

REVIEW, GUARD, EXECUTION, DISPATCH = "weekly_review", "daily_guard", "execution", "dispatcher"
#: Jobs whose fire times are recorded in the job-run table and caught up at start.
CATCHUP_JOBS = (REVIEW, GUARD, EXECUTION)


@dataclass(frozen=True)
class Triggers:
    review: WeeklyTrigger
    guard: TradingDayTrigger
    execution: ExecutionTrigger
    dispatch: MarketHoursTrigger

    def by_job(self) -> dict[str, MarketTrigger]:
        return {
            REVIEW: self.review,
            GUARD: self.guard,
            EXECUTION: self.execution,
            DISPATCH: self.dispatch,
        }


def build_triggers(settings: Settings, calendar: NyseCalendar) -> Triggers:
    tz = ZoneInfo(settings.timezone)
    schedule = settings.schedule
    return Triggers(
        review=WeeklyTrigger(*schedule.weekly_review_at, calendar, tz),
        guard=TradingDayTrigger(schedule.daily_guard_at, calendar, tz),
        execution=ExecutionTrigger(*schedule.execution_at, calendar, tz),
        dispatch=MarketHoursTrigger(
            timedelta(seconds=settings.daemon.dispatch_interval_seconds), calendar, tz
        ),
    )


def catchup_deadline(job: str, fired: datetime, triggers: Triggers) -> datetime:
    """Until when a missed fire time of ``job`` is still worth running.

    review: until the execution it feeds; guard: until the next open (its exits
    go out then); execution: until that day's close.
    """
    cal, tz = triggers.execution.calendar, triggers.execution.tz
    if job == REVIEW:
        feeds = triggers.execution.next_at_or_after(fired)
        assert feeds is not None
        return feeds
    if job == GUARD:
        return next_market_open(fired, tz, cal)
    if job == EXECUTION:
        day = fired.astimezone(tz).date()
        return _local(day, cal.market_close(day), tz)
    raise ValueError(f"no catch-up window for job {job!r}")


@dataclass(frozen=True)
class Upcoming:
    job: str
    day: date
    at: datetime | None
    note: str | None = None


def upcoming(triggers: Triggers, start: datetime, days: int) -> list[Upcoming]:
    """Fire times of the coming ``days`` days with the calendar's reasons, in order.

    A guard skipped on a weekday holiday has ``at=None`` and says why; a moved
    execution names the day it was moved from; the dispatcher shows one line per
    trading day.
    """
    tz = triggers.review.tz
    first = start.astimezone(tz).date()
    end = start + timedelta(days=days)
    out: list[Upcoming] = []
    for offset in range(days + 1):
        out.extend(_day_entries(triggers, first + timedelta(days=offset)))
    kept = [u for u in out if (start <= u.at < end if u.at else u.day < end.date())]
    return sorted(kept, key=lambda u: (u.day, u.at is None, u.at or start, u.job))


def _day_entries(triggers: Triggers, day: date) -> list[Upcoming]:
    cal = triggers.review.calendar
    out = [Upcoming(REVIEW, day, fire) for fire in triggers.review.fire_times_on(day)]
    early = cal.early_close(day)
    note = f"early close {early:%H:%M}: runs on the {early:%H:%M} closing prices" if early else None
    out += [Upcoming(GUARD, day, fire, note) for fire in triggers.guard.fire_times_on(day)]
    reason = cal.holiday_name(day)
    if reason is not None and day.weekday() < 5:
        out.append(Upcoming(GUARD, day, None, f"skipped: {reason}"))
    for fire in triggers.execution.fire_times_on(day):
        planned = triggers.execution.planned_day(day)
        moved = None
        if planned != day:
            moved = f"moved from {planned:%a %Y-%m-%d}: {cal.holiday_name(planned) or 'closed'}"
        out.append(Upcoming(EXECUTION, day, fire, moved))
    fires = triggers.dispatch.fire_times_on(day)
    if fires:
        every = int(triggers.dispatch.interval.total_seconds())
        out.append(Upcoming(DISPATCH, day, fires[0], f"every {every}s until {fires[-1]:%H:%M}"))
    return out
