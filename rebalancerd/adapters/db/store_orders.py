"""Orders: the intent written before sending, then the broker's view of it.

Writing the intent first is what makes a crash between submit and the
database write recoverable: the row (and its deterministic client order id)
is already there for start-up reconciliation to look up at the broker.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from rebalancerd.adapters.db.models import decisions, orders
from rebalancerd.adapters.db.rows import order_record
from rebalancerd.adapters.db.store_base import StoreBase
from rebalancerd.errors import NotFound, StoreError
from rebalancerd.ports import BrokerOrder, OrderRecord, OrderRequest

#: Order statuses after which the broker will not change the order again.
FINAL_ORDER_STATUSES = frozenset({"filled", "canceled", "cancelled", "rejected", "expired"})

PENDING_SUBMIT = "pending_submit"


class OrderStore(StoreBase):
    """The order half of :class:`~rebalancerd.adapters.db.store.SqlStore`."""

    def record_order(
        self,
        decision_id: int | None,
        request: OrderRequest,
        *,
        at: datetime,
        account: str | None = None,
    ) -> OrderRecord:
        """Write the order intent (``pending_submit``) before it is sent.

        The account comes from the decision; ``account`` is needed only for an
        order without one. Recording the same client order id again for the
        same decision returns the existing row, so a retried intent is harmless.
        """
        with self._tx("cannot record order") as conn:
            owner = self._order_account(conn, decision_id, account)
            existing = self._find(conn, request.client_order_id)
            if existing is not None:
                if existing.decision_id != decision_id:
                    raise StoreError(
                        f"client order id {request.client_order_id} already belongs to "
                        f"decision {existing.decision_id}"
                    )
                return existing
            self._ensure_account(conn, owner, at)
            conn.execute(
                orders.insert().values(self._intent_values(owner, decision_id, request, at))
            )
            found = self._find(conn, request.client_order_id)
            assert found is not None
            return found

    @staticmethod
    def _intent_values(
        account: str, decision_id: int | None, request: OrderRequest, at: datetime
    ) -> dict[str, object]:
        return {
            "decision_id": decision_id,
            "account": account,
            "client_order_id": request.client_order_id,
            "symbol": request.symbol,
            "side": request.side.value,
            "type": request.type.value,
            "qty": request.qty,
            "stop_price": request.stop_price,
            "time_in_force": request.time_in_force,
            "status": PENDING_SUBMIT,
            "filled_qty": 0,
            "created_at": at,
            "updated_at": at,
        }

    def _order_account(self, conn: Connection, decision_id: int | None, account: str | None) -> str:
        if decision_id is None:
            if account is None:
                raise ValueError("record_order needs a decision_id or an account")
            return account
        owner = conn.execute(
            select(decisions.c.account).where(decisions.c.id == decision_id)
        ).scalar_one_or_none()
        if owner is None:
            raise NotFound(f"decision {decision_id} not found")
        if account is not None and account != owner:
            raise ValueError(f"decision {decision_id} belongs to {owner}, not {account}")
        return str(owner)

    def _find(self, conn: Connection, client_order_id: str) -> OrderRecord | None:
        row = (
            conn.execute(select(orders).where(orders.c.client_order_id == client_order_id))
            .mappings()
            .first()
        )
        return order_record(row) if row is not None else None

    def update_order(
        self,
        client_order_id: str,
        *,
        status: str,
        at: datetime,
        broker_order: BrokerOrder | None = None,
        error: str | None = None,
    ) -> OrderRecord:
        """Record the broker's answer: status, broker id, fills, or the error."""
        values: dict[str, object] = {"status": status, "updated_at": at}
        if broker_order is not None:
            values["broker_order_id"] = broker_order.id
            values["filled_qty"] = broker_order.filled_qty
            values["filled_avg_price"] = broker_order.filled_avg_price
            if broker_order.stop_price is not None:
                values["stop_price"] = broker_order.stop_price
        if error is not None:
            values["error"] = error
        with self._tx("cannot update order") as conn:
            result = conn.execute(
                orders.update().where(orders.c.client_order_id == client_order_id).values(values)
            )
            if result.rowcount == 0:
                raise NotFound(f"order {client_order_id} not found")
            found = self._find(conn, client_order_id)
            assert found is not None
            return found

    def orders_for_decision(self, decision_id: int) -> list[OrderRecord]:
        stmt = select(orders).where(orders.c.decision_id == decision_id).order_by(orders.c.id)
        with self._tx("cannot read orders") as conn:
            return [order_record(r) for r in conn.execute(stmt).mappings()]

    def unresolved_orders(self, account: str) -> list[OrderRecord]:
        """Orders the broker may still change: everything not filled/canceled/rejected/expired."""
        stmt = (
            select(orders)
            .where(orders.c.account == account, orders.c.status.not_in(FINAL_ORDER_STATUSES))
            .order_by(orders.c.id)
        )
        with self._tx("cannot read orders") as conn:
            return [order_record(r) for r in conn.execute(stmt).mappings()]
