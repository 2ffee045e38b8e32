"""Read-only views for the CLI: positions with their flags, weekly caps.

The positions view runs the same pure rules as the jobs (without recording
anything) so "flags" shows exactly what the next review or guard would see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from rebalancerd.domain.model import Block
from rebalancerd.domain.rules import age_days, evaluate_position, weight
from rebalancerd.domain.timing import at_local, market_date, next_market_open, week_start
from rebalancerd.ports import SlotRecord, Store
from rebalancerd.services.accounts import AccountContext, AccountState, read_account
from rebalancerd.services.evaluate import block_applies


def positions_view(
    ctx: AccountContext, store: Store, now: datetime, state: AccountState | None = None
) -> list[dict[str, Any]]:
    """Positions with their flags; pass ``state`` when the account was just read."""
    state = state or read_account(ctx, store, now)
    equity = state.portfolio.equity
    today = market_date(now, ctx.tz)
    records = store.position_records(ctx.name)
    rows = []
    for p in state.portfolio.positions:
        flags = []
        for block in (Block.WEEKLY, Block.DAILY):
            rule_block = ctx.config.rule_block(block)
            if rule_block is None or not block_applies(ctx, block):
                continue
            proposal = evaluate_position(p, rule_block, equity, today)
            for hit in proposal.hits if proposal else ():
                flags.append({"rule": hit.rule.value, "block": block.value, "detail": hit.detail})
        record = records.get(p.symbol)
        w, plpc = weight(p, equity), p.plpc
        rows.append(
            {
                "account": ctx.name,
                "symbol": p.symbol,
                "qty": p.qty,
                "avg_entry_price": p.avg_entry_price,
                "current_price": p.current_price,
                "market_value": p.market_value,
                "plpc": None if plpc is None else (plpc * 100).quantize(Decimal("0.01")),
                "weight": None if w is None else (w * 100).quantize(Decimal("0.01")),
                "age_days": age_days(p, today),
                "opened_at": p.opened_at,
                "opened_at_source": record.opened_at_source if record else None,
                "catalyst": p.catalyst,
                "catalyst_date": p.catalyst_date,
                "stop_price": p.stop_price,
                "flags": flags,
            }
        )
    return rows


@dataclass(frozen=True)
class CapsWeek:
    week_start: date
    cap: int
    slots: list[SlotRecord]

    @property
    def used(self) -> int:
        return len(self.slots)

    @property
    def left(self) -> int:
        return max(self.cap - self.used, 0)


MARKET_CLOSE = time(16, 0)


def caps_view(ctx: AccountContext, store: Store, now: datetime) -> tuple[CapsWeek, CapsWeek]:
    """The calendar week, and the trading week whose slots the next trades use.

    The second is "this week" to an operator: until Friday's close it is the current
    week; after it (and all weekend) the week of the next open, where the Saturday
    review's exits and Friday's guard exits count.
    """
    cap = ctx.config.max_exits_per_week
    today = market_date(now, ctx.tz)
    current = week_start(today)
    if ctx.calendar.is_trading_day(today) and now < at_local(today, MARKET_CLOSE, ctx.tz):
        upcoming = current
    else:
        upcoming = week_start(market_date(next_market_open(now, ctx.tz, ctx.calendar), ctx.tz))
    return (
        CapsWeek(current, cap, store.slots(ctx.name, current)),
        CapsWeek(upcoming, cap, store.slots(ctx.name, upcoming)),
    )
