"""Conversions between database rows and the port records.

Kept apart from the statements so that every read path builds its records the
same way: enums from their values, tuples for sequences, frozensets for sets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import RowMapping

from rebalancerd.domain.model import Action, OrderType, Side, SkipReason, Source, Status
from rebalancerd.ports import (
    DecisionEvent,
    DecisionRecord,
    JobRun,
    OrderRecord,
    PositionRecord,
    SlotRecord,
)


def json_inputs(inputs: Mapping[str, Any]) -> dict[str, str | None]:
    """Decision inputs as JSON-safe strings (a stray Decimal must not fail the write)."""
    return {str(k): v if v is None or isinstance(v, str) else str(v) for k, v in inputs.items()}


def json_strings(values: Iterable[Any]) -> list[str]:
    return [str(v) for v in values]


def decision_record(row: RowMapping) -> DecisionRecord:
    skip = row["skip_reason"]
    return DecisionRecord(
        id=row["id"],
        uid=row["uid"],
        account=row["account"],
        source=Source(row["source"]),
        symbol=row["symbol"],
        action=Action(row["action"]),
        qty=row["qty"],
        reasons=tuple(row["reasons"]),
        details=tuple(row["details"]),
        inputs=dict(row["inputs"]),
        execute_at=row["execute_at"],
        status=Status(row["status"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        skip_reason=SkipReason(skip) if skip else None,
        fraction=row["fraction"],
        profit_level=row["profit_level"],
        report_id=row["report_id"],
        slot_week=row["slot_week"],
    )


def decision_event(row: RowMapping) -> DecisionEvent:
    return DecisionEvent(
        decision_id=row["decision_id"],
        status=Status(row["status"]),
        at=row["at"],
        actor=row["actor"],
        note=row["note"],
    )


def order_record(row: RowMapping) -> OrderRecord:
    return OrderRecord(
        id=row["id"],
        decision_id=row["decision_id"],
        client_order_id=row["client_order_id"],
        symbol=row["symbol"],
        side=Side(row["side"]),
        type=OrderType(row["type"]),
        qty=row["qty"],
        status=row["status"],
        broker_order_id=row["broker_order_id"],
        stop_price=row["stop_price"],
        filled_qty=row["filled_qty"],
        filled_avg_price=row["filled_avg_price"],
        error=row["error"],
        created_at=row["created_at"],
    )


def position_record(row: RowMapping) -> PositionRecord:
    return PositionRecord(
        account=row["account"],
        symbol=row["symbol"],
        opened_at=row["opened_at"],
        opened_at_source=row["opened_at_source"],
        avg_entry_price=row["avg_entry_price"],
        catalyst=row["catalyst"],
        catalyst_date=row["catalyst_date"],
        profit_levels_taken=frozenset(row["profit_levels_taken"] or ()),
    )


def slot_record(row: RowMapping) -> SlotRecord:
    return SlotRecord(
        account=row["account"],
        week_start=row["week_start"],
        slot_no=row["slot_no"],
        decision_id=row["decision_id"],
        symbol=row["symbol"],
    )


def job_run(row: RowMapping) -> JobRun:
    return JobRun(
        id=row["id"],
        job=row["job"],
        account=row["account"],
        scheduled_at=row["scheduled_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        outcome=row["outcome"],
        error=row["error"],
    )
