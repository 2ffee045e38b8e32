"""The execution: approved decisions whose time has come go to the broker.

Exits before entries (SPEC §4): the database is first reconciled with the
broker; every exit then cancels the symbol's own stop (which holds the shares),
is sized from the shares really available and submitted; only then are the
fills awaited (bounded by the sender's ``fill_timeout``). A refused sale puts
the cancelled stop back, and after a trim (or a partial fill) a stop is placed
for what is left, so a position is never left unprotected by an exit. The
account is re-read and entries are sized to the buying power really left.

Crash safety: a decision is marked ``submitted`` before its order intent is
recorded and sent, and a ``submitted`` decision is *resumed* by the next run:
its order is looked up at the broker by the deterministic ``client_order_id``
and only sent (exactly as recorded) when the broker does not have it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

import structlog

from rebalancerd.domain.model import Action, OrderStatus, Side, SkipReason, Status
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
from rebalancerd.services.accounts import (
    AccountContext,
    AccountState,
    closing_side,
    entry_record,
    read_account,
    stop_orders_for,
)
from rebalancerd.services.evaluate import RunOptions
from rebalancerd.services.orders import (
    OrderSender,
    client_order_id,
    protective_stop_price,
    request_from_record,
)
from rebalancerd.services.reconcile import Reconciler

log = structlog.get_logger(__name__)

_ORDER_TO_DECISION: dict[OrderStatus, Status] = {
    OrderStatus.FILLED: Status.FILLED,
    OrderStatus.CANCELED: Status.CANCELLED,
    OrderStatus.EXPIRED: Status.EXPIRED,
    OrderStatus.REJECTED: Status.REJECTED,
}


@dataclass
class _SentExit:
    """An exit at the broker, waiting for its fill."""

    decision: DecisionRecord
    order: BrokerOrder
    position: BrokerPosition | None  # as read before the sale; None when resumed
    cancelled: list[BrokerOrder] = field(default_factory=list)


class ExecutionService:
    def __init__(self, store: Store, sender: OrderSender, reconciler: Reconciler | None = None):
        self.store, self.sender = store, sender
        self.reconciler = reconciler or Reconciler(store, sender.clock, sender)

    def due(self, ctx: AccountContext, due_by: datetime) -> list[DecisionRecord]:
        approved = self.store.list_decisions(
            DecisionFilter(account=ctx.name, statuses=frozenset({Status.APPROVED}))
        )
        return [d for d in approved if d.execute_at <= due_by]

    def in_flight(self, ctx: AccountContext) -> list[DecisionRecord]:
        """Decisions an interrupted run left ``submitted``: resumed before anything new."""
        return self.store.list_decisions(
            DecisionFilter(account=ctx.name, statuses=frozenset({Status.SUBMITTED}))
        )

    def run(
        self, ctx: AccountContext, now: datetime, opts: RunOptions, due_by: datetime
    ) -> list[DecisionRecord]:
        due = self.due(ctx, due_by)
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
        self.reconciler.run(ctx, now)
        todo = self.in_flight(ctx) + due
        if not todo:
            log.info("execution_nothing_due", account=ctx.name)
            return []
        if not ctx.broker.market_is_open():
            # Nothing is cancelled or sent: the dispatcher submits them after the open.
            log.warning(
                "execution_deferred", account=ctx.name, reason="market_closed", due=len(todo)
            )
            return []
        state = read_account(ctx, self.store, now)
        exits = [d for d in todo if d.action in (Action.EXIT, Action.TRIM)]
        sent = [s for d in exits if (s := self._submit_exit(ctx, d, state, now)) is not None]
        for item in sent:
            self._finish_exit(ctx, item, now)
        entries = [d for d in todo if d.action is Action.BUY]
        if entries:
            self._entries(ctx, entries, read_account(ctx, self.store, now) if sent else state, now)
        return [self.store.get_decision(d.id) for d in todo]

    # ------------------------------------------------------------------ exits

    def _submit_exit(
        self, ctx: AccountContext, d: DecisionRecord, state: AccountState, now: datetime
    ) -> _SentExit | None:
        resumed = d.status is Status.SUBMITTED
        if resumed:
            found = self.sender.recover(ctx.broker, d.id, client_order_id(d.uid))
            if found is not None:
                return _SentExit(d, found, None)
        bp = state.broker_positions.get(d.symbol)
        if bp is None or bp.qty == 0:
            self._end(d, SkipReason.NO_POSITION, now, "position no longer held at the broker")
            return None
        held = abs(bp.qty)
        wanted = held if d.action is Action.EXIT else min(d.qty, held)
        if not resumed:
            # Claimed before any stop is touched: a second execution racing this one
            # (the CLI while the daemon dispatches) loses here and touches nothing.
            try:
                d = self.store.transition(d.id, Status.SUBMITTED, at=now, note=f"qty {wanted}")
            except InvalidTransition:
                log.warning("decision_claimed_elsewhere", decision_id=d.id, symbol=d.symbol)
                return None
        stops = stop_orders_for(d.symbol, bp.qty, state.open_orders)
        cancelled = [s for s in stops if self.sender.cancel_and_confirm(ctx.broker, s)]
        freed = sum((s.qty - s.filled_qty for s in cancelled), Decimal(0))
        qty = min(wanted, bp.qty_available + freed)
        if qty <= 0:
            self._protect(ctx, d, cancelled, bp, held)
            self._end(d, SkipReason.CONFLICT, now, "no shares available: held by other orders")
            return None
        request = OrderRequest(d.symbol, qty, closing_side(bp.qty), client_order_id(d.uid))
        result = self.sender.send(ctx.broker, d.id, request)
        if result.order is None:
            self._protect(ctx, d, cancelled, bp, held)
            self.store.transition(d.id, Status.REJECTED, at=now, note=result.rejection)
            return None
        return _SentExit(d, result.order, bp, cancelled)

    def _finish_exit(self, ctx: AccountContext, item: _SentExit, now: datetime) -> None:
        """Await the fill, protect what is left, then settle (so a crash never skips
        the stop: the decision stays ``submitted`` until the position is protected)."""
        d = item.decision
        order = self.sender.await_final(ctx.broker, item.order)
        if order.status.is_final:
            self._protect_rest(ctx, item, order)
        self._settle(d, order, now)
        log.info(
            "exit_executed" if order.status is OrderStatus.FILLED else "exit_not_filled",
            decision_id=d.id,
            account=ctx.name,
            symbol=d.symbol,
            action=d.action.value,
            qty=str(order.qty),
            filled_qty=str(order.filled_qty),
            filled_avg_price=str(order.filled_avg_price),
            status=order.status.value,
        )

    def _protect_rest(self, ctx: AccountContext, item: _SentExit, order: BrokerOrder) -> None:
        d, bp = item.decision, item.position
        if bp is None:  # resumed: what is held now is what is left
            bp = next((p for p in ctx.broker.get_positions() if p.symbol == d.symbol), None)
            if bp is None or stop_orders_for(d.symbol, bp.qty, ctx.broker.get_open_orders()):
                return  # gone, or still protected
            # An interrupted run may have cancelled the stop: what is left gets one.
            self._protect(ctx, d, item.cancelled, bp, abs(bp.qty), always=True)
            return
        left = abs(bp.qty) - order.filled_qty
        if left > 0:
            self._protect(ctx, d, item.cancelled, bp, left)

    def _protect(
        self,
        ctx: AccountContext,
        d: DecisionRecord,
        cancelled: list[BrokerOrder],
        bp: BrokerPosition,
        qty: Decimal,
        *,
        always: bool = False,
    ) -> None:
        """A GTC stop for the ``qty`` shares still held: the cancelled stop put back, and
        after a trim always one (a crash may have lost the cancelled stop's price)."""
        if not cancelled and d.action is not Action.TRIM and not always:
            return
        side = closing_side(bp.qty)
        price = protective_stop_price(cancelled, side, bp.avg_entry_price, ctx.config.stop_loss_pct)
        self.sender.place_stop(ctx.broker, d.id, d.uid, d.symbol, qty, side, price)

    # ---------------------------------------------------------------- shared

    def _settle(self, d: DecisionRecord, order: BrokerOrder, now: datetime) -> None:
        """The decision's status from its final order: filled, partial, refused or dead.

        An order still working (not filled within the wait, possibly partly) leaves
        the decision ``submitted``: the dispatcher resumes it by lookup, awaits the
        end, and only then protects what is left and settles.
        """
        if not order.status.is_final:
            log.info(
                "order_still_working",
                decision_id=d.id,
                symbol=d.symbol,
                filled_qty=str(order.filled_qty),
                status=order.status.value,
            )
            return
        status = _ORDER_TO_DECISION.get(order.status)
        if order.filled_qty > 0 and status is not Status.FILLED:
            status = Status.PARTIALLY_FILLED
        if status is not None:
            note = f"order {order.status.value} filled {order.filled_qty}"
            if order.filled_avg_price is not None:
                note += f" @ {order.filled_avg_price}"
            self.store.transition(d.id, status, at=now, note=note)

    def _end(self, d: DecisionRecord, reason: SkipReason, now: datetime, note: str) -> None:
        """Nothing to send: skipped (or cancelled when an interrupted run had begun it)."""
        if d.status is Status.SUBMITTED:
            self.store.transition(d.id, Status.CANCELLED, at=now, note=f"{reason.value}: {note}")
        else:
            self.store.transition(d.id, Status.SKIPPED, at=now, skip_reason=reason, note=note)
        log.info("decision_not_executed", decision_id=d.id, symbol=d.symbol, reason=reason.value)

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
        # Never on margin: a margin account's buying power is 2–4× its cash.
        cash = min(state.snapshot.cash, state.snapshot.buying_power)
        equity = state.portfolio.equity
        max_pct = _max_position_pct(ctx)
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
                self._end(d, reason, now, note)
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
        self._settle(d, order, now)
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


def _max_position_pct(ctx: AccountContext) -> Decimal | None:
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
