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
from decimal import Decimal

import structlog

from rebalancerd.domain.model import Action, Mode, OrderStatus, SkipReason, Status
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
    read_account,
    stop_orders_for,
)
from rebalancerd.services.entries import EntryExecutor
from rebalancerd.services.evaluate import RunOptions
from rebalancerd.services.orders import (
    OrderSender,
    client_order_id,
    protective_stop_price,
)
from rebalancerd.services.reconcile import Reconciler
from rebalancerd.services.settle import end, settle

log = structlog.get_logger(__name__)


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
        self.entries = EntryExecutor(store, sender)
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
        if ctx.config.mode is Mode.OFF:
            # "off" stops the account: what was approved before waits until it is back on.
            log.info("execution_skipped", account=ctx.name, reason="mode_off")
            return []
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
            self.entries.run(
                ctx, entries, read_account(ctx, self.store, now) if sent else state, now
            )
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
            end(self.store, d, SkipReason.NO_POSITION, now, "position no longer held at the broker")
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
            end(
                self.store, d, SkipReason.CONFLICT, now, "no shares available: held by other orders"
            )
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
        settle(self.store, d, order, now)
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
