"""Shared test fakes implementing the ports in :mod:`rebalancerd.ports`.

Each fake is small and implements only what its docstring says; add new fakes
below rather than growing these into general-purpose doubles.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any


class FakeClock:
    """A :class:`~rebalancerd.ports.Clock` that moves only when told to.

    ``now`` must be timezone-aware; it is returned (and stored) in UTC.
    """

    def __init__(self, now: datetime) -> None:
        self._now = _aware_utc(now)

    def now(self) -> datetime:
        return self._now

    def set(self, dt: datetime) -> None:
        self._now = _aware_utc(dt)

    def advance(self, delta: timedelta) -> None:
        self._now += delta


def _aware_utc(dt: datetime) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("FakeClock needs a timezone-aware datetime")
    return dt.astimezone(UTC)


class InMemorySimStateStore:
    """Only the simulated-broker part of the Store port: ``load/save_sim_state``.

    States are copied through a JSON round trip on the way in and out, so a
    test fails if the simulator tries to persist something a real database
    column (JSON) could not hold, and callers never share mutable state with
    the store. ``saves`` counts writes per account.
    """

    def __init__(self) -> None:
        self._states: dict[str, str] = {}
        self.saves: dict[str, int] = {}

    def load_sim_state(self, account: str) -> dict[str, Any] | None:
        raw = self._states.get(account)
        if raw is None:
            return None
        state: dict[str, Any] = json.loads(raw)
        return state

    def save_sim_state(self, account: str, state: dict[str, Any]) -> None:
        self._states[account] = json.dumps(state, allow_nan=False)
        self.saves[account] = self.saves.get(account, 0) + 1
