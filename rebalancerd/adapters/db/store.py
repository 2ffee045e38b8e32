"""The SQLAlchemy implementation of the :class:`rebalancerd.ports.Store` port.

The methods live in focused modules (decisions and slots, orders, records);
this class only puts them together. Every method is one transaction, returns
the frozen records of :mod:`rebalancerd.ports` (Decimals, aware UTC datetimes,
enums) and raises :class:`~rebalancerd.errors.StoreError` for database faults.
"""

from __future__ import annotations

from rebalancerd.adapters.db.store_audit import AuditStore
from rebalancerd.adapters.db.store_decisions import DecisionStore
from rebalancerd.adapters.db.store_orders import OrderStore
from rebalancerd.adapters.db.store_records import RecordStore
from rebalancerd.adapters.db.store_reports import ReportStore
from rebalancerd.adapters.db.store_runs import RunStore


class SqlStore(DecisionStore, OrderStore, RecordStore, ReportStore, RunStore, AuditStore):
    """``SqlStore(engine, now=...)``: ``now`` stamps rows whose method takes no time."""


__all__ = ["SqlStore"]
