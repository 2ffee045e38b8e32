"""The execution: approved decisions whose time has come go to the broker.

Exits before entries (SPEC §4): each exit first cancels the symbol's own stop
(which holds the shares), sells, and after a trim re-places the stop for what
is left; if the sale is refused the cancelled stop is put back, so a position
is never left unprotected by a failed exit. Entries are then sized to the cash
really available after the exits filled.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

import structlog

from rebalancerd.domain.model import (
    Action,
    OrderStatus,
    OrderType,
    Side,
    SkipReason,
    Status,
)
from rebalancerd.domain.timing import market_date, week_start
from rebalancerd.ports import (
    BrokerOrder,
    BrokerPosition,
    DecisionFilter,
    DecisionRecord,
    OrderRequest,
    Store,
)
from rebalancerd.services.accounts import (
    AccountContext,
    AccountState,
    closing_side,
    read_account,
    stop_orders_for,
)
from rebalancerd.services.evaluate import RunOptions
from rebalancerd.services.orders import OrderSender, client_order_id

log = structlog.get_logger(__name__)

_ORDER_TO_DECISION: dict[OrderStatus, Status] = {
    OrderStatus.FILLED: Status.FILLED,
    OrderStatus.CANCELED: Status.CANCELLED,
    OrderStatus.EXPIRED: Status.EXPIRED,
    OrderStatus.REJECTED: Status.REJECTED,
}


class ExecutionService:
    def __init__(self, store: Store, sender: OrderSender):
        self.store, self.sender = store, sender

    def due(self, ctx: AccountContext, due_by: datetime) -> list[DecisionRecord]:
        approved = self.store.list_decisions(
            DecisionFilter(account=ctx.name, statuses=frozenset({Status.APPROVED}))
        )
        return [d for d in approved if d.execute_at <= due_by]

    def run(
        self, ctx: AccountContext, now: datetime, opts: RunOptions, due_by: datetime
    ) -> list[DecisionRecord]:
        due = self.due(ctx, due_by)
        if not due:
            log.info("execution_nothing_due", account=ctx.name)
            return []
        if not opts.real:
            for d in due:
                log.info(
                    "exit_would_submit",
                    decision_id=d.id,
                    account=ctx.name,
                    symbol=d.symbol,
                    action=d.action.value,
                    qty=str(d.qty),
                    dry_run=opts.dry_run,
                    enabled=opts.enabled,
                )
            return due
        exits = [d for d in due if d.action in (Action.EXIT, Action.TRIM)]
        entries = [d for d in due if d.action is Action.BUY]
        state = read_account(ctx, self.store, now)
        for decision in exits:
            self._exit(ctx, decision, state, now)
        if entries:
            self._entries(ctx, entries, read_account(ctx, self.store, now), now)
        return [self.store.get_decision(d.id) for d in due]

    # ------------------------------------------------------------------ exits

    def _exit(
        self, ctx: AccountContext, d: DecisionRecord, state: AccountState, now: datetime
    ) -> None:
        bp = state.broker_positions.get(d.symbol)
        if bp is None or bp.qty == 0:
            self.store.transition(
                d.id,
                Status.SKIPPED,
                at=now,
                skip_reason=SkipReason.NO_POSITION,
                note="position no longer held at the broker",
            )
            log.warning("exit_skipped", decision_id=d.id, symbol=d.symbol, reason="no_position")
            return
        qty = abs(bp.qty) if d.action is Action.EXIT else min(d.qty, abs(bp.qty))
        stops = stop_orders_for(d.symbol, bp.qty, state.open_orders)
        cancelled = [s for s in stops if self.sender.cancel_and_confirm(ctx.broker, s)]
        request = OrderRequest(
            symbol=d.symbol,
            qty=qty,
            side=closing_side(bp.qty),
            client_order_id=client_order_id(d.uid),
        )
        self.store.transition(d.id, Status.SUBMITTED, at=now, note=f"qty {qty}")
        result = self.sender.send(ctx.broker, d.id, request)
        if result.order is None:
            self.store.transition(d.id, Status.REJECTED, at=now, note=result.rejection)
            self._restore_stops(ctx, d, cancelled, abs(bp.qty))
            return
        order = self.sender.await_final(ctx.broker, result.order)
        self._settle(d, order, now)
        remaining = abs(bp.qty) - order.filled_qty
        if remaining > 0 and cancelled:
            self._restore_stops(ctx, d, cancelled, remaining)
        log.info(
            "exit_executed" if order.status is OrderStatus.FILLED else "exit_not_filled",
            decision_id=d.id,
            account=ctx.name,
            symbol=d.symbol,
            action=d.action.value,
            qty=str(qty),
            filled_qty=str(order.filled_qty),
            filled_avg_price=str(order.filled_avg_price),
            status=order.status.value,
        )

    def _settle(self, d: DecisionRecord, order: BrokerOrder, now: datetime) -> None:
        status = _ORDER_TO_DECISION.get(order.status)
        if status is None and order.filled_qty > 0:
            status = Status.PARTIALLY_FILLED
        if status is Status.CANCELLED and order.filled_qty > 0:
            status = Status.PARTIALLY_FILLED
        if status is not None:
            self.store.transition(d.id, status, at=now, note=f"order {order.status.value}")

    def _restore_stops(
        self, ctx: AccountContext, d: DecisionRecord, cancelled: list[BrokerOrder], qty: Decimal
    ) -> None:
        """Re-place a cancelled stop for the shares still held."""
        for n, stop in enumerate(cancelled, start=1):
            request = OrderRequest(
                symbol=stop.symbol,
                qty=qty.to_integral_value(rounding=ROUND_FLOOR) if qty >= 1 else qty,
                side=stop.side,
                client_order_id=client_order_id(d.uid, "s", n),
                type=OrderType.STOP,
                time_in_force="gtc",
                stop_price=stop.stop_price,
            )
            result = self.sender.send(ctx.broker, d.id, request)
            log.info(
                "stop_order_replaced" if result.accepted else "stop_order_replace_failed",
                decision_id=d.id,
                symbol=stop.symbol,
                qty=str(request.qty),
                stop_price=str(stop.stop_price),
                error=result.rejection,
            )

    # ---------------------------------------------------------------- entries

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

    def _entries(
        self, ctx: AccountContext, entries: list[DecisionRecord], state: AccountState, now: datetime
    ) -> None:
        exited = self._exited_this_week(ctx, now)
        cash = state.snapshot.buying_power
        equity = state.portfolio.equity
        max_pct = _max_position_pct(ctx)
        for d in entries:
            skip = _entry_skip(d, exited, state.broker_positions)
            price = None if skip else _entry_price(ctx, d)
            qty = Decimal(0)
            if not skip and price is not None:
                qty = _entry_qty(d, price, cash, equity, max_pct)
            if skip or qty <= 0 or price is None:
                reason = skip or SkipReason.INSUFFICIENT_CASH
                self.store.transition(d.id, Status.SKIPPED, at=now, skip_reason=reason)
                log.info("entry_skipped", decision_id=d.id, symbol=d.symbol, reason=reason.value)
                continue
            cash -= qty * price
            self._buy(ctx, d, qty, now)

    def _buy(self, ctx: AccountContext, d: DecisionRecord, qty: Decimal, now: datetime) -> None:
        request = OrderRequest(d.symbol, qty, Side.BUY, client_order_id(d.uid))
        self.store.transition(d.id, Status.SUBMITTED, at=now, note=f"qty {qty}")
        result = self.sender.send(ctx.broker, d.id, request)
        if result.order is None:
            self.store.transition(d.id, Status.REJECTED, at=now, note=result.rejection)
            return
        order = self.sender.await_final(ctx.broker, result.order)
        self._settle(d, order, now)
        stop_loss = ctx.config.stop_loss_pct
        if order.filled_qty > 0 and order.filled_avg_price and stop_loss:
            stop_price = (order.filled_avg_price * (1 - stop_loss / 100)).quantize(Decimal("0.01"))
            stop = OrderRequest(
                d.symbol,
                order.filled_qty,
                Side.SELL,
                client_order_id(d.uid, "s", 1),
                type=OrderType.STOP,
                time_in_force="gtc",
                stop_price=stop_price,
            )
            self.sender.send(ctx.broker, d.id, stop)
        log.info(
            "entry_executed",
            decision_id=d.id,
            symbol=d.symbol,
            qty=str(order.filled_qty),
            price=str(order.filled_avg_price),
        )


def _max_position_pct(ctx: AccountContext) -> Decimal | None:
    block = ctx.config.weekly or ctx.config.daily
    return block.max_position_pct if block is not None else None


def _entry_skip(
    d: DecisionRecord, exited: set[str], positions: dict[str, BrokerPosition]
) -> SkipReason | None:
    if d.symbol in exited:
        return SkipReason.EXITED_THIS_WEEK
    if d.symbol in positions and positions[d.symbol].qty != 0:
        return SkipReason.ALREADY_HELD
    return None


def _entry_price(ctx: AccountContext, d: DecisionRecord) -> Decimal | None:
    latest = getattr(ctx.broker, "latest_price", None)
    price = latest(d.symbol) if latest is not None else None
    return price if isinstance(price, Decimal) else None


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
