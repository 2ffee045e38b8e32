"""The entries of an execution: research BUYs, after the exits (SPEC §4).

Sized to the cash really left once the exits filled (never on margin), capped by
the decision's weight and the tightest ``max_position_pct``; one buy per symbol
per run, none for a symbol exited this week or already held. A filled entry gets
a GTC protective stop at ``stop_loss_pct`` and a position record carrying the
report's catalyst, so the stale rule can later see the catalyst pass.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

import structlog

from rebalancerd.domain.model import Action, Side, SkipReason, Status
from rebalancerd.domain.timing import market_date, week_start
from rebalancerd.errors import InvalidTransition
from rebalancerd.ports import (
    BrokerOrder,
    BrokerPosition,
    DecisionFilter,
    DecisionRecord,
    OrderRequest,
    Store,
)
from rebalancerd.services.accounts import AccountContext, AccountState, entry_record
from rebalancerd.services.orders import (
    OrderSender,
    client_order_id,
    protective_stop_price,
    request_from_record,
)
from rebalancerd.services.settle import end, settle

log = structlog.get_logger(__name__)


class EntryExecutor:
    def __init__(self, store: Store, sender: OrderSender):
        self.store, self.sender = store, sender

    def _exited_this_week(self, ctx: AccountContext, now: datetime) -> set[str]:
        monday = week_start(market_date(now, ctx.tz))
        done = self.store.list_decisions(
            DecisionFilter(
                account=ctx.name,
                statuses=frozenset({Status.SUBMITTED, Status.FILLED, Status.PARTIALLY_FILLED}),
            )
        )
        return {
            d.symbol
            for d in done
            if d.action is Action.EXIT and market_date(d.execute_at, ctx.tz) >= monday
        }

    def run(
        self, ctx: AccountContext, entries: list[DecisionRecord], state: AccountState, now: datetime
    ) -> None:
        exited = self._exited_this_week(ctx, now)
        # Never on margin: a margin account's buying power is 2–4× its cash.
        cash = min(state.snapshot.cash, state.snapshot.buying_power)
        equity = state.portfolio.equity
        max_pct = max_position_pct(ctx)
        bought: set[str] = set()  # one buy per symbol per run, whatever the queue holds
        for d in entries:
            cid = client_order_id(d.uid)
            if d.status is Status.SUBMITTED:
                found = self.sender.recover(ctx.broker, d.id, cid)
                recorded = [
                    o for o in self.store.orders_for_decision(d.id) if o.client_order_id == cid
                ]
                if found is not None or recorded:
                    request = request_from_record(recorded[0]) if recorded else None
                    cash -= self._buy(ctx, d, found, request, now)
                    continue
            skip = _entry_skip(d, exited, state.broker_positions, bought)
            price = None if skip else ctx.broker.latest_price(d.symbol)
            qty = Decimal(0)
            if not skip and price is not None:
                qty = _entry_qty(d, price, cash, equity, max_pct)
            if skip or price is None or qty <= 0:
                reason = skip or (SkipReason.INSUFFICIENT_CASH if price else SkipReason.CONFLICT)
                note = "no market price" if price is None and not skip else f"cash {cash}"
                end(self.store, d, reason, now, note)
                continue
            if d.status is not Status.SUBMITTED:
                try:
                    self.store.transition(d.id, Status.SUBMITTED, at=now, note=f"qty {qty}")
                except InvalidTransition:
                    log.warning("decision_claimed_elsewhere", decision_id=d.id, symbol=d.symbol)
                    continue
            bought.add(d.symbol)
            cash -= self._buy(ctx, d, None, OrderRequest(d.symbol, qty, Side.BUY, cid), now)

    def _buy(
        self,
        ctx: AccountContext,
        d: DecisionRecord,
        order: BrokerOrder | None,
        request: OrderRequest | None,
        now: datetime,
    ) -> Decimal:
        """Send (unless recovered), await, settle, protect; returns the cash spent."""
        if order is None:
            assert request is not None
            result = self.sender.send(ctx.broker, d.id, request)
            if result.order is None:
                self.store.transition(d.id, Status.REJECTED, at=now, note=result.rejection)
                return Decimal(0)
            order = result.order
        order = self.sender.await_final(ctx.broker, order)
        if order.filled_qty > 0 and order.filled_avg_price and ctx.config.stop_loss_pct:
            # The protective stop goes in before the decision is settled (see _finish_exit).
            price = protective_stop_price(
                [], Side.SELL, order.filled_avg_price, ctx.config.stop_loss_pct
            )
            self.sender.place_stop(
                ctx.broker, d.id, d.uid, d.symbol, order.filled_qty, Side.SELL, price
            )
        settle(self.store, d, order, now)
        if order.filled_qty > 0 and order.filled_avg_price:
            record = entry_record(ctx.name, d, order.filled_avg_price, now)
            self.store.open_position_record(record)
        log.info(
            "entry_executed",
            decision_id=d.id,
            symbol=d.symbol,
            qty=str(order.filled_qty),
            price=str(order.filled_avg_price),
            status=order.status.value,
        )
        if order.status.is_final:
            return order.filled_qty * (order.filled_avg_price or Decimal(0))
        # Still working: its whole quantity is committed; price it at what it filled
        # at so far, else the request's limit-free estimate (the last price).
        estimate = order.filled_avg_price or ctx.broker.latest_price(d.symbol) or Decimal(0)
        return order.qty * estimate


def max_position_pct(ctx: AccountContext) -> Decimal | None:
    """The tightest ``max_position_pct`` of the account's blocks: no entry may open
    above what either rule block would trim at once."""
    limits = [
        b.max_position_pct
        for b in (ctx.config.weekly, ctx.config.daily)
        if b is not None and b.max_position_pct is not None
    ]
    return min(limits) if limits else None


def _entry_skip(
    d: DecisionRecord,
    exited: set[str],
    positions: dict[str, BrokerPosition],
    bought: set[str],
) -> SkipReason | None:
    if d.symbol in exited:
        return SkipReason.EXITED_THIS_WEEK
    if d.symbol in bought or (d.symbol in positions and positions[d.symbol].qty != 0):
        return SkipReason.ALREADY_HELD
    return None


def _entry_qty(
    d: DecisionRecord, price: Decimal, cash: Decimal, equity: Decimal, max_pct: Decimal | None
) -> Decimal:
    """Whole shares: the decision's weight of equity, never above max_position_pct or cash."""
    weight = Decimal(d.inputs["weight"]) / 100 if d.inputs.get("weight") else None
    limit = max_pct / 100 if max_pct is not None else None
    target = min(w for w in (weight, limit) if w is not None) if (weight or limit) else None
    budget = cash if target is None else min(cash, target * equity)
    if d.qty > 0:
        budget = min(budget, d.qty * price)
    return (budget / price).to_integral_value(rounding=ROUND_FLOOR)
