"""The ``[schedule]`` table: wall-clock times of the three jobs."""

from __future__ import annotations

import re
from datetime import date, time

from pydantic import Field, field_validator

from rebalancerd.config.base import ConfigModel

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
_MARKET_OPEN = time(9, 30)
_MARKET_CLOSE = time(16, 0)


def parse_clock(text: str) -> time:
    """``"HH:MM"`` (00:00–23:59) as a time."""
    match = _CLOCK.match(text.strip())
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"{text!r} is not a time: use HH:MM between 00:00 and 23:59")
    return time(int(match[1]), int(match[2]))


def parse_weekly(text: str) -> tuple[int, time]:
    """``"ddd HH:MM"`` as (weekday index, Monday = 0; time)."""
    parts = text.split()
    if len(parts) != 2 or parts[0].lower() not in _WEEKDAYS:
        raise ValueError(f"{text!r} is not a weekly time: use 'ddd HH:MM', e.g. 'sat 12:00'")
    return _WEEKDAYS.index(parts[0].lower()), parse_clock(parts[1])


def _format_weekly(day: int, at: time) -> str:
    return f"{_WEEKDAYS[day]} {at:%H:%M}"


class ScheduleConfig(ConfigModel):
    """Wall-clock times in the configured timezone."""

    weekly_review: str = "sat 12:00"
    daily_guard: str = "16:30"
    execution: str = "mon 09:30"
    extra_closures: list[date] = Field(default_factory=list)

    @field_validator("weekly_review")
    @classmethod
    def _weekly(cls, value: str) -> str:
        return _format_weekly(*parse_weekly(value))

    @field_validator("execution")
    @classmethod
    def _execution(cls, value: str) -> str:
        day, at = parse_weekly(value)
        if day > 4:
            raise ValueError(f"{value!r}: the execution day must be a weekday (mon–fri)")
        if not _MARKET_OPEN <= at < _MARKET_CLOSE:
            raise ValueError(f"{value!r}: the execution time must be within 09:30–16:00")
        return _format_weekly(day, at)

    @field_validator("daily_guard")
    @classmethod
    def _daily(cls, value: str) -> str:
        return f"{parse_clock(value):%H:%M}"

    @field_validator("extra_closures")
    @classmethod
    def _closures(cls, value: list[date]) -> list[date]:
        return sorted(set(value))

    @property
    def weekly_review_at(self) -> tuple[int, time]:
        """(weekday, Monday = 0; wall-clock time) of the Saturday review."""
        return parse_weekly(self.weekly_review)

    @property
    def daily_guard_at(self) -> time:
        return parse_clock(self.daily_guard)

    @property
    def execution_at(self) -> tuple[int, time]:
        """(weekday, Monday = 0; time) of the weekly execution."""
        return parse_weekly(self.execution)
