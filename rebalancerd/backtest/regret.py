"""Exit regret from the live database (``rebalancerd report``, SPEC §11).

For every executed exit or trim: the close 1, 2 and 4 weeks after the fill
(the last close on or before that date) and what holding the sold shares would
have changed, ``(later close − fill price) × shares``: positive is money left on
the table, negative a loss avoided. Totals per rule, and overall: the sum is
the rebalanced account against a counterfactual hold of the exited shares.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from rebalancerd.backtest.data import Bars
from rebalancerd.backtest.records import dec
from rebalancerd.domain.model import Action, Side, Status
from rebalancerd.ports import DecisionFilter, Store

HORIZONS_WEEKS = (1, 2, 4)
_EXECUTED = frozenset({Status.FILLED, Status.PARTIALLY_FILLED})


@dataclass(frozen=True)
class ExitFill:
    decision_id: int
    account: str
    symbol: str
    action: str
    reasons: tuple[str, ...]
    day: date
    qty: Decimal
    price: Decimal


@dataclass(frozen=True)
class Regret:
    fill: ExitFill
    later: tuple[Decimal | None, ...]  # close after each horizon, None past the data

    @property
    def deltas(self) -> tuple[Decimal | None, ...]:
        """(later − fill) × shares per horizon: > 0 left on the table, < 0 loss avoided."""
        f = self.fill
        return tuple(None if p is None else (p - f.price) * f.qty for p in self.later)


def executed_exits(store: Store, accounts: Iterable[str], tz: ZoneInfo) -> list[ExitFill]:
    """Every filled (or partly filled) EXIT/TRIM of ``accounts``, with its sale fills."""
    fills = []
    for account in accounts:
        flt = DecisionFilter(account=account, statuses=_EXECUTED)
        for d in store.list_decisions(flt):
            if d.action not in (Action.EXIT, Action.TRIM):
                continue
            for o in store.orders_for_decision(d.id):
                if o.side is not Side.SELL or o.filled_qty <= 0 or o.filled_avg_price is None:
                    continue
                when = o.created_at or d.updated_at
                fills.append(
                    ExitFill(
                        d.id,
                        account,
                        d.symbol,
                        d.action.value,
                        tuple(d.reasons),
                        when.astimezone(tz).date(),
                        o.filled_qty,
                        o.filled_avg_price,
                    )
                )
    return fills


def close_on_or_before(prices: Bars, symbol: str, day: date) -> Decimal | None:
    """The last close of ``symbol`` on or before ``day``; None past the data's end."""
    column = prices.column.get(symbol)
    if column is None or day > prices.dates[-1]:
        return None
    index = bisect_right(prices.dates, day) - 1
    if index < 0:
        return None
    value = float(prices.last_close[index, column])
    return None if np.isnan(value) else dec(value)


def regrets(fills: Sequence[ExitFill], prices: Bars) -> list[Regret]:
    return [
        Regret(
            f,
            tuple(
                close_on_or_before(prices, f.symbol, f.day + timedelta(weeks=w))
                for w in HORIZONS_WEEKS
            ),
        )
        for f in fills
    ]


def totals(rows: Sequence[Regret]) -> dict[str, list[Decimal]]:
    """Sum of the deltas per rule (a multi-reason exit counts under each) and ``all``."""
    out: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * len(HORIZONS_WEEKS))
    for row in rows:
        for key in (*row.fill.reasons, "all"):
            out[key] = [a + (b or Decimal(0)) for a, b in zip(out[key], row.deltas, strict=True)]
    return dict(sorted(out.items(), key=lambda kv: (kv[0] == "all", kv[0])))


def to_json(rows: Sequence[Regret]) -> dict[str, Any]:
    def num(value: Decimal | None) -> float | None:
        return None if value is None else float(value)

    return {
        "horizons_weeks": list(HORIZONS_WEEKS),
        "exits": [
            {
                "decision_id": r.fill.decision_id,
                "account": r.fill.account,
                "symbol": r.fill.symbol,
                "action": r.fill.action,
                "reasons": list(r.fill.reasons),
                "date": r.fill.day.isoformat(),
                "qty": num(r.fill.qty),
                "price": num(r.fill.price),
                "later_close": [num(p) for p in r.later],
                "left_on_table": [num(d) for d in r.deltas],
            }
            for r in rows
        ],
        "totals": {k: [float(v) for v in vals] for k, vals in totals(rows).items()},
    }
