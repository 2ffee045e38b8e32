"""The NYSE trading calendar (implements :class:`rebalancerd.ports.TradingCalendar`).

Full-day closures come from ``holidays.financial_holidays("NYSE")``, which
knows NYSE's own rules: Good Friday, Juneteenth (from 2022), weekend holidays
observed on the Friday before or the Monday after, the exception that a New
Year's Day falling on a Saturday is *not* observed on the preceding Friday
(the last trading day of the year stays open), and special closures such as
national days of mourning. Operators add unforeseen closures through
``extra_closures``.

Early closes (13:00) follow NYSE's standing practice:

* July 3, when it is a trading day. July 3 is a trading day only when July 4
  falls Tuesday–Friday; when July 4 is a Saturday, July 3 is the observed
  holiday and July 2 is a full day; when July 4 is a Sunday or Monday there is
  no early close at all (as in 2015, 2020, 2021, 2022, 2026 and 2027).
* The day after Thanksgiving.
* December 24, when it is a trading day (Monday–Thursday; a Friday
  December 24 is the observed Christmas holiday).

Everything here is plain dates and wall-clock times in America/New_York; no
timezone arithmetic happens in this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, time, timedelta
from typing import Any

MARKET_OPEN = time(9, 30)
MARKET_CLOSE = time(16, 0)
EARLY_CLOSE = time(13, 0)

WEEKEND = "weekend"
EXTRA_CLOSURE = "extra closure"


class NyseCalendar:
    """Trading days, holidays and session times of the NYSE.

    Holiday tables are built per year on first use and cached, so constructing
    a calendar costs nothing and importing this module has no side effects.
    """

    def __init__(self, extra_closures: Iterable[date] = ()) -> None:
        self._extra: frozenset[date] = frozenset(extra_closures)
        self._years: dict[int, dict[date, str]] = {}

    # ------------------------------------------------------------ holidays

    def _holidays(self, year: int) -> dict[date, str]:
        table = self._years.get(year)
        if table is None:
            import holidays  # local: keep the package import off the module import path

            built: Any = holidays.financial_holidays("NYSE", years=year)
            table = {day: str(name) for day, name in built.items() if day.year == year}
            self._years[year] = table
        return table

    def holiday_name(self, day: date) -> str | None:
        """Why the market is closed on ``day``; ``None`` on a trading day.

        An NYSE holiday's name wins, then ``"weekend"``, then ``"extra closure"``.
        """
        name = self._holidays(day.year).get(day)
        if name is not None:
            return name
        if day.weekday() >= 5:
            return WEEKEND
        if day in self._extra:
            return EXTRA_CLOSURE
        return None

    def is_trading_day(self, day: date) -> bool:
        return self.holiday_name(day) is None

    # ------------------------------------------------------------ sessions

    def early_close(self, day: date) -> time | None:
        """13:00 on NYSE's early-close days (see the module docstring), else ``None``."""
        if not self.is_trading_day(day):
            return None
        if (day.month, day.day) in ((7, 3), (12, 24)):
            return EARLY_CLOSE
        if day.month == 11 and day.weekday() == 4 and _is_day_after_thanksgiving(day):
            return EARLY_CLOSE
        return None

    def market_open(self, day: date) -> time:
        """09:30 New York time (callers check :meth:`is_trading_day` first)."""
        return MARKET_OPEN

    def market_close(self, day: date) -> time:
        """16:00 New York time, or 13:00 on an early-close day."""
        return self.early_close(day) or MARKET_CLOSE

    # ------------------------------------------------------------ navigation

    def next_trading_day(self, day: date) -> date:
        """The first trading day strictly after ``day``."""
        candidate = day + timedelta(days=1)
        # No real calendar closes for a month; the bound guards a misconfigured
        # extra_closures list from looping forever.
        for _ in range(366):
            if self.is_trading_day(candidate):
                return candidate
            candidate += timedelta(days=1)
        raise ValueError(f"no trading day within a year after {day.isoformat()}")

    def first_trading_day_of_week(self, monday: date) -> date | None:
        """The first trading day of the Monday–Friday week containing ``monday``.

        Any day of the week is accepted and taken to mean its week; ``None`` when
        the whole week is closed.
        """
        start = monday - timedelta(days=monday.weekday())
        for offset in range(5):
            candidate = start + timedelta(days=offset)
            if self.is_trading_day(candidate):
                return candidate
        return None


def _is_day_after_thanksgiving(day: date) -> bool:
    """True for the Friday after the fourth Thursday of November."""
    thursday = day - timedelta(days=1)
    return thursday.month == 11 and 22 <= thursday.day <= 28
