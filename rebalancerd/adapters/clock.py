"""Clocks implementing :class:`rebalancerd.ports.Clock`.

Both return timezone-aware UTC datetimes; callers convert to the market's
timezone themselves (SPEC §14: dates are local to the market).
"""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    """The machine's wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock stopped at one instant (``--now`` / ``REBALANCERD_NOW``).

    A naive ``at`` is refused: the caller decides which zone a bare time means.
    """

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at
