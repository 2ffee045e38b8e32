"""Reconciliation: line the database up with what the broker really holds.

Run at daemon start-up and before every execution (SPEC §4), because the
database and the broker drift apart: a crash between "sent" and "recorded"
leaves an order whose state the database does not know, the operator trades
by hand, a protective stop triggers overnight. Each difference found is
logged as one event and repaired in the database:

- ``order_reconciled``: an order the database holds as unresolved, looked up
  at the broker by its ``client_order_id`` and updated (never re-sent);
- ``order_not_at_broker``: a recorded intent the broker never received (a
  crash before the submit); the execution resumes its decision, and a
  protective stop's intent is sent now (after the lookup proved it absent);
- ``unknown_broker_order``: an open broker order the database does not know
  (placed by hand or by another tool);
- ``position_closed_outside``: a position record whose position is gone
  (closed by hand or by a stop) is closed;
- ``position_adopted``: a position opened by hand gets a record with its
  opening date from the broker's fill history (else "first seen now").

Reading costs a constant number of broker calls (positions, open orders) plus
one lookup per unresolved order that is not among the open orders.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from rebalancerd.domain.model import Action, OrderStatus, OrderType, Status
from rebalancerd.ports import (
    BrokerOrder,
    BrokerPosition,
    Clock,
    DecisionFilter,
    OrderRecord,
    PositionRecord,
    Store,
)
from rebalancerd.services.accounts import AccountContext, closing_side, record_for
from rebalancerd.services.orders import OWN_PREFIX, OrderSender, request_from_record

log = structlog.get_logger(__name__)

PENDING_SUBMIT = "pending_submit"
NOT_SENT = "canceled"
#: How far back decisions are searched to tell our own open orders from unknown ones.
KNOWN_ORDERS_LOOKBACK = timedelta(days=400)
#: An entry the daemon filled this recently explains a position it has no record of.
ENTRY_LOOKBACK = timedelta(days=31)
_EXITED = frozenset({Status.FILLED, Status.PARTIALLY_FILLED, Status.SUBMITTED})


@dataclass
class ReconcileReport:
    """What one reconciliation found (each item was also logged)."""

    account: str
    orders_updated: list[str] = field(default_factory=list)
    orders_not_at_broker: list[str] = field(default_factory=list)
    unknown_broker_orders: list[str] = field(default_factory=list)
    positions_closed: list[str] = field(default_factory=list)
    positions_adopted: list[str] = field(default_factory=list)

    @property
    def differences(self) -> int:
        return sum(
            len(items)
            for items in (
                self.orders_updated,
                self.orders_not_at_broker,
                self.unknown_broker_orders,
                self.positions_closed,
                self.positions_adopted,
            )
        )


class Reconciler:
    """Compares one account's database state with its broker and repairs the database."""

    def __init__(self, store: Store, clock: Clock, sender: OrderSender | None = None):
        self.store, self.clock, self.sender = store, clock, sender

    def run(self, ctx: AccountContext, now: datetime) -> ReconcileReport:
        report = ReconcileReport(ctx.name)
        positions = ctx.broker.get_positions()
        open_orders = ctx.broker.get_open_orders()
        self._orders(ctx, open_orders, report)
        self._unknown_orders(ctx, open_orders, now, report)
        self._positions(ctx, positions, now, report)
        log.info(
            "reconciliation_finished",
            account=ctx.name,
            differences=report.differences,
            orders_updated=len(report.orders_updated),
            unknown_broker_orders=len(report.unknown_broker_orders),
            positions_closed=len(report.positions_closed),
            positions_adopted=len(report.positions_adopted),
        )
        return report

    # ------------------------------------------------------------------ orders

    def _orders(
        self, ctx: AccountContext, open_orders: list[BrokerOrder], report: ReconcileReport
    ) -> None:
        """Unresolved orders in the database: ask the broker what became of them."""
        by_client = {o.client_order_id: o for o in open_orders}
        for record in self.store.unresolved_orders(ctx.name):
            found = by_client.get(record.client_order_id)
            if found is None:
                found = ctx.broker.get_order_by_client_id(record.client_order_id)
            if found is None:
                self._missing(ctx, record, report)
                continue
            if _unchanged(record, found):
                continue
            self.store.update_order(
                record.client_order_id,
                status=found.status.value,
                at=self.clock.now(),
                broker_order=found,
            )
            report.orders_updated.append(record.client_order_id)
            self._late_fill(record, found)
            log.warning(
                "order_reconciled",
                account=ctx.name,
                client_order_id=record.client_order_id,
                symbol=record.symbol,
                status_before=record.status,
                status=found.status.value,
                filled_qty=str(found.filled_qty),
                filled_avg_price=str(found.filled_avg_price),
            )

    def _late_fill(self, record: OrderRecord, found: BrokerOrder) -> None:
        """A partially filled decision whose order went on to fill completely."""
        if record.decision_id is None or found.status is not OrderStatus.FILLED:
            return
        if record.type is OrderType.STOP:
            return  # a protective stop triggering does not change its decision
        decision = self.store.get_decision(record.decision_id)
        if decision.status is Status.PARTIALLY_FILLED:
            note = f"order filled {found.filled_qty} @ {found.filled_avg_price} (late)"
            self.store.transition(decision.id, Status.FILLED, at=self.clock.now(), note=note)

    def _missing(self, ctx: AccountContext, record: OrderRecord, report: ReconcileReport) -> None:
        """An order the broker does not know: an intent never sent, or a stale row."""
        report.orders_not_at_broker.append(record.client_order_id)
        in_flight = False
        if record.decision_id is not None:
            decision = self.store.get_decision(record.decision_id)
            in_flight = decision.status is Status.SUBMITTED
        resent = False
        if (
            not in_flight
            and record.type is OrderType.STOP
            and self.sender is not None
            and _still_protects(ctx, record)
        ):
            # A protective stop recorded but never sent: the position needs it now.
            resent = self.sender.send(
                ctx.broker, record.decision_id, request_from_record(record)
            ).accepted
        elif not in_flight:
            # Nobody will send it any more: close the row so it stops being unresolved.
            self.store.update_order(
                record.client_order_id,
                status=NOT_SENT,
                at=self.clock.now(),
                error="never reached the broker (interrupted before submit)",
            )
        log.warning(
            "order_not_at_broker",
            account=ctx.name,
            client_order_id=record.client_order_id,
            symbol=record.symbol,
            status_before=record.status,
            decision_id=record.decision_id,
            resumed_by_execution=in_flight,
            stop_resent=resent,
        )

    def _unknown_orders(
        self,
        ctx: AccountContext,
        open_orders: list[BrokerOrder],
        now: datetime,
        report: ReconcileReport,
    ) -> None:
        unresolved = {o.client_order_id for o in self.store.unresolved_orders(ctx.name)}
        candidates = [o for o in open_orders if o.client_order_id not in unresolved]
        if any(o.client_order_id.startswith(OWN_PREFIX) for o in candidates):
            known = self._known_client_ids(ctx.name, now)
            candidates = [o for o in candidates if o.client_order_id not in known]
        for order in candidates:
            report.unknown_broker_orders.append(order.client_order_id)
            log.info(
                "unknown_broker_order",
                account=ctx.name,
                broker_order_id=order.id,
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                side=order.side.value,
                type=order.type.value,
                qty=str(order.qty),
                stop_price=str(order.stop_price),
                status=order.status.value,
            )

    def _known_client_ids(self, account: str, now: datetime) -> set[str]:
        decisions = self.store.list_decisions(
            DecisionFilter(account=account, since=now - KNOWN_ORDERS_LOOKBACK)
        )
        return {o.client_order_id for d in decisions for o in self.store.orders_for_decision(d.id)}

    # --------------------------------------------------------------- positions

    def _positions(
        self,
        ctx: AccountContext,
        positions: list[BrokerPosition],
        now: datetime,
        report: ReconcileReport,
    ) -> None:
        records = self.store.position_records(ctx.name)
        held = {p.symbol: p for p in positions if p.qty != 0}
        for symbol in sorted(set(records) - set(held)):
            reason = self._why_gone(ctx.name, records[symbol])
            self.store.close_position_record(ctx.name, symbol, at=now)
            report.positions_closed.append(symbol)
            log.warning(
                "position_closed_outside",
                account=ctx.name,
                symbol=symbol,
                reason=reason,
                opened_at=records[symbol].opened_at.isoformat(),
            )
        for symbol in sorted(set(held) - set(records)):
            record = self.store.open_position_record(record_for(ctx.name, held[symbol], now))
            ours = self._bought(ctx.name, symbol, now)
            if not ours:
                report.positions_adopted.append(symbol)
            (log.info if ours else log.warning)(
                "position_record_opened" if ours else "position_adopted",
                account=ctx.name,
                symbol=symbol,
                reason="entry_filled" if ours else "opened_outside",
                qty=str(held[symbol].qty),
                avg_entry_price=str(held[symbol].avg_entry_price),
                opened_at=record.opened_at.isoformat(),
                opened_at_source=record.opened_at_source,
            )

    def _bought(self, account: str, symbol: str, now: datetime) -> bool:
        """Did the daemon's own recent entry open this position?"""
        buys = self.store.list_decisions(
            DecisionFilter(account=account, symbol=symbol, statuses=_EXITED)
        )
        recent = now - ENTRY_LOOKBACK
        return any(d.action is Action.BUY and d.updated_at >= recent for d in buys)

    def _why_gone(self, account: str, record: PositionRecord) -> str:
        """``exit_filled`` when the daemon's own exit sold it, else ``not_held_at_broker``."""
        exits = self.store.list_decisions(
            DecisionFilter(account=account, symbol=record.symbol, statuses=_EXITED)
        )
        ours = [d for d in exits if d.action is Action.EXIT and d.updated_at >= record.opened_at]
        return "exit_filled" if ours else "not_held_at_broker"


def _unchanged(record: OrderRecord, found: BrokerOrder) -> bool:
    return (
        record.status == found.status.value
        and record.broker_order_id == found.id
        and record.filled_qty == found.filled_qty
    )


def reconcile_all(
    reconciler: Reconciler, contexts: Iterable[AccountContext], now: datetime
) -> list[ReconcileReport]:
    """Start-up reconciliation of every account (the daemon calls this once)."""
    return [reconciler.run(ctx, now) for ctx in contexts]


def _still_protects(ctx: AccountContext, record: OrderRecord) -> bool:
    """A stop found unsent is sent only while the position it protects is held on the
    side it closes; once the position is gone it would open a new one (a short)."""
    held = next((p for p in ctx.broker.get_positions() if p.symbol == record.symbol), None)
    return held is not None and held.qty != 0 and closing_side(held.qty) is record.side
