"""What services need to know about one account, and reading its state.

Reading an account costs a constant number of broker calls (account, positions,
open orders), never one per position. The position records in the store are
kept in step with the broker here: a new position gets a record (its opening
date from the broker when known, else "first seen now"), a vanished one is
closed, so ages survive restarts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import structlog

from rebalancerd.config.settings import AccountConfig
from rebalancerd.domain.model import OrderType, Portfolio, Position, Side
from rebalancerd.domain.timing import market_date
from rebalancerd.ports import (
    AccountSnapshot,
    Broker,
    BrokerOrder,
    BrokerPosition,
    DecisionRecord,
    PositionRecord,
    Store,
    TradingCalendar,
)

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class AccountContext:
    """An account's config with the adapters built for it."""

    name: str
    config: AccountConfig
    broker: Broker
    tz: ZoneInfo
    calendar: TradingCalendar


@dataclass(frozen=True)
class AccountState:
    snapshot: AccountSnapshot
    portfolio: Portfolio
    broker_positions: dict[str, BrokerPosition]
    open_orders: list[BrokerOrder]


def closing_side(qty: Decimal) -> Side:
    return Side.BUY if qty < 0 else Side.SELL


def stop_orders_for(symbol: str, qty: Decimal, orders: list[BrokerOrder]) -> list[BrokerOrder]:
    """The symbol's own protective stops: stop orders on the closing side."""
    side = closing_side(qty)
    return [
        o
        for o in orders
        if o.symbol == symbol
        and o.side is side
        and o.type in (OrderType.STOP, OrderType.STOP_LIMIT)
    ]


def record_for(account: str, bp: BrokerPosition, now: datetime) -> PositionRecord:
    """A new position's record: its opening date from the broker when known, else now."""
    if bp.opened_at is not None:
        opened_at, source = bp.opened_at, "broker"
    else:
        opened_at, source = now, "first_seen"
    return PositionRecord(
        account=account,
        symbol=bp.symbol,
        opened_at=opened_at,
        opened_at_source=source,
        avg_entry_price=bp.avg_entry_price,
        catalyst=bp.catalyst,
        catalyst_date=bp.catalyst_date,
    )


def entry_record(account: str, d: DecisionRecord, price: Decimal, at: datetime) -> PositionRecord:
    """The record of a position rebalancerd opened itself: the research's catalyst
    and its date come with it, so the stale rule can later see the catalyst pass."""
    text = d.inputs.get("catalyst_date")
    reason = d.details[0].removeprefix("research: ") if d.details else None
    return PositionRecord(
        account=account,
        symbol=d.symbol,
        opened_at=at,
        opened_at_source="entry",
        avg_entry_price=price,
        catalyst=reason or None,
        catalyst_date=date.fromisoformat(text) if text else None,
    )


def sync_position_records(
    store: Store, account: str, positions: list[BrokerPosition], now: datetime
) -> dict[str, PositionRecord]:
    """Open records for new positions, close those of positions that are gone."""
    records = store.position_records(account)
    held = {p.symbol for p in positions if p.qty != 0}
    for symbol in sorted(set(records) - held):
        store.close_position_record(account, symbol, at=now)
        log.info("position_record_closed", account=account, symbol=symbol)
        del records[symbol]
    for bp in positions:
        if bp.qty == 0 or bp.symbol in records:
            continue
        record = store.open_position_record(record_for(account, bp, now))
        records[bp.symbol] = record
        log.info(
            "position_record_opened",
            account=account,
            symbol=bp.symbol,
            opened_at=record.opened_at.isoformat(),
            opened_at_source=record.opened_at_source,
        )
    return records


def to_position(
    bp: BrokerPosition, record: PositionRecord | None, orders: list[BrokerOrder], tz: ZoneInfo
) -> Position:
    stops = [o.stop_price for o in stop_orders_for(bp.symbol, bp.qty, orders) if o.stop_price]
    stop_price = None
    if stops:
        # The stop that would trigger first protects the position.
        stop_price = min(stops) if bp.qty < 0 else max(stops)
    return Position(
        symbol=bp.symbol,
        qty=bp.qty,
        avg_entry_price=bp.avg_entry_price,
        current_price=bp.current_price,
        opened_at=market_date(record.opened_at, tz) if record else None,
        catalyst=(record.catalyst if record else None) or bp.catalyst,
        catalyst_date=(record.catalyst_date if record else None) or bp.catalyst_date,
        stop_price=stop_price,
        profit_levels_taken=record.profit_levels_taken if record else frozenset(),
    )


def read_account(ctx: AccountContext, store: Store, now: datetime) -> AccountState:
    """Snapshot the broker account and line the store's position records up with it."""
    snapshot = ctx.broker.get_account()
    positions = ctx.broker.get_positions()
    orders = ctx.broker.get_open_orders()
    records = sync_position_records(store, ctx.name, positions, now)
    domain_positions = tuple(
        to_position(bp, records.get(bp.symbol), orders, ctx.tz) for bp in positions if bp.qty != 0
    )
    return AccountState(
        snapshot=snapshot,
        portfolio=Portfolio(cash=snapshot.cash, positions=domain_positions),
        broker_positions={bp.symbol: bp for bp in positions},
        open_orders=orders,
    )
