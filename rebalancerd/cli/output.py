"""Rendering for the CLI: one JSON document on stdout, or human tables.

JSON numbers: quantities are JSON numbers (integers for whole shares); money
inside ``inputs`` stays an exact decimal string as stored. Instants are
ISO 8601 with the offset of the configured timezone.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from rebalancerd.ports import DecisionEvent, DecisionRecord, JobRun, OrderRecord


def _number(value: Decimal) -> int | float:
    """Whole quantities as JSON integers; fractional ones as JSON numbers."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def to_jsonable(value: Any, tz: ZoneInfo | None = None) -> Any:
    """Plain JSON data from records: Decimals as numbers, aware datetimes localised."""
    if isinstance(value, Decimal):
        return _number(value)
    if isinstance(value, datetime):
        return (value.astimezone(tz) if tz else value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, tz) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v, tz) for v in value]
    return value


def decision_dict(d: DecisionRecord, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "id": d.id,
        "uid": d.uid,
        "account": d.account,
        "source": d.source.value,
        "symbol": d.symbol,
        "action": d.action.value,
        "qty": to_jsonable(d.qty),
        "fraction": to_jsonable(d.fraction),
        "reasons": list(d.reasons),
        "details": list(d.details),
        "status": d.status.value,
        "skip_reason": d.skip_reason.value if d.skip_reason else None,
        "execute_at": to_jsonable(d.execute_at, tz),
        "created_at": to_jsonable(d.created_at, tz),
        "updated_at": to_jsonable(d.updated_at, tz),
        "slot_week": to_jsonable(d.slot_week),
        "profit_level": d.profit_level,
        "report_id": d.report_id,
        "inputs": dict(d.inputs),
    }


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value)
    return str(value)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    t = Table(title=title, title_justify="left", show_lines=False)
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*(_cell(v) for v in row))
    return t


def decisions_table(decisions: Sequence[DecisionRecord], tz: ZoneInfo, title: str) -> Table:
    rows = [
        (
            d.id,
            d.account,
            d.source.value,
            d.symbol,
            d.action.value,
            d.qty,
            d.status.value + (f" ({d.skip_reason.value})" if d.skip_reason else ""),
            list(d.reasons),
            local_time(d.execute_at, tz),
            "; ".join(d.details),
        )
        for d in decisions
    ]
    columns = ["id", "account", "source", "symbol", "action", "qty", "status", "reasons"]
    return table(title, [*columns, "execute_at", "why"], rows)


#: Width of tables written to a pipe or file: rich would wrap them at 80 columns.
PIPE_WIDTH = 240


def console() -> Console:
    """A console for stdout: the terminal's width, or a wide one when piped."""
    width = None if sys.stdout.isatty() else PIPE_WIDTH
    return Console(soft_wrap=False, width=width)


def local_time(value: datetime | None, tz: ZoneInfo) -> str:
    """An instant as the operator reads it: weekday, date and time in ``timezone``."""
    if value is None:
        return ""
    return value.astimezone(tz).strftime("%a %Y-%m-%d %H:%M")


def event_dict(e: DecisionEvent, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "status": e.status.value,
        "at": to_jsonable(e.at, tz),
        "actor": e.actor,
        "note": e.note,
    }


def order_dict(o: OrderRecord, tz: ZoneInfo, updated_at: datetime | None = None) -> dict[str, Any]:
    return {
        "client_order_id": o.client_order_id,
        "broker_order_id": o.broker_order_id,
        "symbol": o.symbol,
        "side": o.side.value,
        "type": o.type.value,
        "qty": to_jsonable(o.qty),
        "stop_price": to_jsonable(o.stop_price),
        "status": o.status,
        "filled_qty": to_jsonable(o.filled_qty),
        "filled_avg_price": to_jsonable(o.filled_avg_price),
        "error": o.error,
        "created_at": to_jsonable(o.created_at, tz),
        "updated_at": to_jsonable(updated_at, tz),
    }


def run_dict(r: JobRun, tz: ZoneInfo) -> dict[str, Any]:
    duration = None
    if r.finished_at is not None:
        duration = round((r.finished_at - r.started_at).total_seconds(), 3)
    return {
        "id": r.id,
        "job": r.job,
        "account": r.account,
        "scheduled_at": to_jsonable(r.scheduled_at, tz),
        "started_at": to_jsonable(r.started_at, tz),
        "finished_at": to_jsonable(r.finished_at, tz),
        "duration_seconds": duration,
        "outcome": r.outcome,
        "error": r.error,
    }
