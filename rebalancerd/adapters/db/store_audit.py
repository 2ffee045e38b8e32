"""Read-only queries for the operator's views and the audit export.

Batch reads (all orders of many decisions in one query) so that ``export`` and
``runs`` cost a constant number of statements, whatever the history's length.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select

from rebalancerd.adapters.db.models import job_runs, orders, position_records
from rebalancerd.adapters.db.rows import job_run, order_record
from rebalancerd.adapters.db.store_base import StoreBase
from rebalancerd.ports import JobRun, OrderRecord


class AuditStore(StoreBase):
    """Views and export queries of :class:`~rebalancerd.adapters.db.store.SqlStore`."""

    def list_runs(
        self,
        *,
        since: datetime | None = None,
        job: str | None = None,
        account: str | None = None,
        limit: int | None = None,
    ) -> list[JobRun]:
        """Job runs started since ``since``, oldest first; ``limit`` keeps the newest."""
        c = job_runs.c
        stmt = select(job_runs)
        if since is not None:
            stmt = stmt.where(c.started_at >= since)
        if job is not None:
            stmt = stmt.where(c.job == job)
        if account is not None:
            stmt = stmt.where(c.account == account)
        stmt = stmt.order_by(c.id.desc())
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._tx("cannot read job runs") as conn:
            rows = list(conn.execute(stmt).mappings())
        return [job_run(r) for r in reversed(rows)]

    def orders_for_decisions(
        self, decision_ids: Collection[int]
    ) -> dict[int, list[tuple[OrderRecord, datetime]]]:
        """Each decision's orders in id order, with the time the broker last changed them."""
        if not decision_ids:
            return {}
        stmt = (
            select(orders)
            .where(orders.c.decision_id.in_(sorted(decision_ids)))
            .order_by(orders.c.id)
        )
        found: dict[int, list[tuple[OrderRecord, datetime]]] = {}
        with self._tx("cannot read orders") as conn:
            for row in conn.execute(stmt).mappings():
                found.setdefault(row["decision_id"], []).append(
                    (order_record(row), row["updated_at"])
                )
        return found

    def position_opened_at(
        self, account: str, symbol: str, before: datetime
    ) -> tuple[datetime, str] | None:
        """When the position held at ``before`` was opened, and how that date is known."""
        pr = position_records.c
        stmt = (
            select(pr.opened_at, pr.opened_at_source)
            .where(pr.account == account, pr.symbol == symbol, pr.opened_at <= before)
            .order_by(pr.opened_at.desc(), pr.id.desc())
            .limit(1)
        )
        with self._tx("cannot read position records") as conn:
            row = conn.execute(stmt).first()
        return (row.opened_at, row.opened_at_source) if row is not None else None
