"""Performance numbers of one backtest run (SPEC §11), computed from fills and equity.

Returns and risk come from the daily equity curve (floats: they are statistics,
not money); realised P&L from the Decimal fills. Definitions are in the README:
Sharpe is annualised with √252 and no risk-free rate; turnover is the value sold
and bought over two, divided by the average equity, per year; a "win" is a sale above its
entry price; short-term gains are realised P&L on shares held 365 days or less.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from rebalancerd.backtest.records import RunResult

TRADING_DAYS = 252
SHORT_TERM_DAYS = 365

#: metrics a sweep may rank by; all "higher is better" (drawdown is negative)
RANKABLE = (
    "total_return",
    "annual_return",
    "sharpe",
    "max_drawdown",
    "win_rate",
    "final_equity",
    "realised_pnl",
    "short_term_gains",
)


@dataclass(frozen=True)
class Metrics:
    final_equity: float
    total_return: float
    annual_return: float
    max_drawdown: float
    sharpe: float
    trades: int
    entries: int
    exits: int
    turnover: float
    win_rate: float | None
    avg_hold_days: float | None
    realised_pnl: float
    short_term_gains: float
    exits_per_rule: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _returns(equity: np.ndarray[Any, np.dtype[np.float64]], initial: float) -> np.ndarray[Any, Any]:
    curve = np.concatenate(([initial], equity))
    return np.diff(curve) / curve[:-1]


def max_drawdown(equity: np.ndarray[Any, np.dtype[np.float64]], initial: float) -> float:
    """The deepest fall from a running peak, as a negative fraction (0 when none)."""
    curve = np.concatenate(([initial], equity))
    peaks = np.maximum.accumulate(curve)
    return float(np.min(curve / peaks - 1.0))


def sharpe(returns: np.ndarray[Any, Any]) -> float:
    if len(returns) < 2:
        return 0.0
    std = float(np.std(returns, ddof=1))
    if std == 0.0:
        return 0.0
    return float(np.mean(returns)) / std * float(np.sqrt(TRADING_DAYS))


def compute(result: RunResult) -> Metrics:
    initial = float(result.initial_cash)
    equity = result.equity
    final = float(equity[-1]) if len(equity) else initial
    total = final / initial - 1.0 if initial else 0.0
    days = (result.dates[-1] - result.dates[0]).days if result.dates else 0
    annual = (1.0 + total) ** (365.25 / days) - 1.0 if days > 0 and total > -1.0 else total
    years = days / 365.25
    sells = [f for f in result.fills if f.side == "sell"]
    buys = [f for f in result.fills if f.side == "buy"]
    traded = sum((f.value for f in result.fills), Decimal(0))
    mean_equity = float(np.mean(equity)) if len(equity) else initial
    pnl = [f.pnl for f in sells if f.pnl is not None]
    holds = [f.hold_days for f in sells if f.hold_days is not None]
    short = [
        f.pnl
        for f in sells
        if f.pnl is not None and f.hold_days is not None and f.hold_days <= SHORT_TERM_DAYS
    ]
    rules: Counter[str] = Counter(reason for f in sells for reason in f.reasons)
    return Metrics(
        final_equity=round(final, 2),
        total_return=total,
        annual_return=annual,
        max_drawdown=max_drawdown(equity, initial),
        sharpe=sharpe(_returns(equity, initial)),
        trades=len(result.fills),
        entries=len(buys),
        exits=len(sells),
        turnover=float(traded) / 2.0 / mean_equity / years if mean_equity and years else 0.0,
        win_rate=sum(1 for p in pnl if p > 0) / len(pnl) if pnl else None,
        avg_hold_days=sum(holds) / len(holds) if holds else None,
        realised_pnl=float(sum(pnl, Decimal(0))),
        short_term_gains=float(sum(short, Decimal(0))),
        exits_per_rule=dict(sorted(rules.items())),
        skipped=dict(sorted(Counter(s.reason for s in result.skips).items())),
    )
