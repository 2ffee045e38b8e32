"""What a backtest run produces and keeps: queued exits, holdings, fills, skips.

Money and quantities are Decimal, as in the live services; only the equity
curve is float (it feeds statistics, not orders).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np

from rebalancerd.backtest.policy import Policy
from rebalancerd.domain.model import Action, Source

STOP_LOSS = "stop_loss"
ENTRY = "entry"


def dec(value: float) -> Decimal:
    """A price read from the file back as the decimal written there (rounded at load)."""
    text = repr(value)
    return Decimal(text[:-2] if text.endswith(".0") else text)


@dataclass(frozen=True, slots=True)
class Pending:
    """A queued exit: fills at the first open on or after day index ``due``."""

    action: Action
    qty: Decimal
    reasons: tuple[str, ...]
    source: Source
    due: int
    week: date | None  # the weekly slot it holds, if any


@dataclass(slots=True)
class Holding:
    symbol: str
    col: int
    qty: Decimal
    entry_price: Decimal
    opened_at: date
    opened_day: int
    catalyst_date: date | None
    stop_price: Decimal | None
    levels: set[str] = field(default_factory=set)
    pending: Pending | None = None


@dataclass(frozen=True, slots=True)
class Fill:
    day: date
    symbol: str
    side: str  # "buy" | "sell"
    qty: Decimal
    price: Decimal
    source: str  # entry | weekly_review | daily_guard | stop_loss
    reasons: tuple[str, ...] = ()
    pnl: Decimal | None = None
    hold_days: int | None = None

    @property
    def value(self) -> Decimal:
        return self.qty * self.price


@dataclass(frozen=True, slots=True)
class Skip:
    day: date
    symbol: str
    source: str
    reason: str


@dataclass
class RunResult:
    policy: Policy
    dates: tuple[date, ...]
    equity: np.ndarray[Any, np.dtype[np.float64]]
    initial_cash: Decimal
    fills: list[Fill]
    skips: list[Skip]
    open_positions: dict[str, Decimal]
