"""How a decision ends at execution: settled from its order, or ended unsent.

Shared by the exit and entry halves of the execution so both record outcomes
the same way.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from rebalancerd.domain.model import OrderStatus, SkipReason, Status
from rebalancerd.ports import BrokerOrder, DecisionRecord, Store

log = structlog.get_logger(__name__)

_ORDER_TO_DECISION: dict[OrderStatus, Status] = {
    OrderStatus.FILLED: Status.FILLED,
    OrderStatus.CANCELED: Status.CANCELLED,
    OrderStatus.EXPIRED: Status.EXPIRED,
    OrderStatus.REJECTED: Status.REJECTED,
}


def settle(store: Store, d: DecisionRecord, order: BrokerOrder, now: datetime) -> None:
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
        store.transition(d.id, status, at=now, note=note)


def end(store: Store, d: DecisionRecord, reason: SkipReason, now: datetime, note: str) -> None:
    """Nothing to send: skipped (or cancelled when an interrupted run had begun it)."""
    if d.status is Status.SUBMITTED:
        store.transition(d.id, Status.CANCELLED, at=now, note=f"{reason.value}: {note}")
    else:
        store.transition(d.id, Status.SKIPPED, at=now, skip_reason=reason, note=note)
    log.info("decision_not_executed", decision_id=d.id, symbol=d.symbol, reason=reason.value)
