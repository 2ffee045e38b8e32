"""The audit export: decisions, their orders and fills, as CSV or JSON Lines.

For the operator's own records (the proposal's "tax implications" concern):
every executed exit carries its holding period (from the position's opening
date to the fill) and its realised gain against the average entry price the
decision was made on. One row per order of a decision, or one row for a
decision that never produced an order; every value is a string (decimals
exact, instants ISO 8601 in the configured timezone) so CSV and JSONL hold
exactly the same data.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Collection, Iterable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Protocol, TextIO
from zoneinfo import ZoneInfo

from rebalancerd.domain.model import Action, OrderType, Side, Status
from rebalancerd.ports import DecisionEvent, DecisionFilter, DecisionRecord, OrderRecord

COLUMNS = (
    "decision_id",
    "decision_uid",
    "account",
    "source",
    "symbol",
    "action",
    "decision_qty",
    "reasons",
    "status",
    "skip_reason",
    "created_at",
    "execute_at",
    "decided_by",
    "decided_at",
    "client_order_id",
    "order_side",
    "order_type",
    "order_qty",
    "order_status",
    "order_error",
    "filled_qty",
    "filled_avg_price",
    "filled_at",
    "avg_entry_price",
    "opened_at",
    "opened_at_source",
    "holding_days",
    "holding_term",
    "realised_gain",
)

_CENT = Decimal("0.01")
_DECIDED = frozenset({Status.APPROVED, Status.REJECTED, Status.EXPIRED})


class ExportStore(Protocol):
    def list_decisions(self, flt: DecisionFilter) -> list[DecisionRecord]: ...

    def decision_history(self, decision_id: int) -> list[DecisionEvent]: ...

    def orders_for_decisions(
        self, decision_ids: Collection[int]
    ) -> dict[int, list[tuple[OrderRecord, datetime]]]: ...

    def position_opened_at(
        self, account: str, symbol: str, before: datetime
    ) -> tuple[datetime, str] | None: ...


def _s(value: object) -> str:
    return "" if value is None else str(value)


def _iso(value: datetime | None, tz: ZoneInfo) -> str:
    return value.astimezone(tz).isoformat() if value is not None else ""


def holding_term(opened: date, closed: date) -> str:
    """US convention: "long" when held more than one year, else "short"."""
    try:
        anniversary = opened.replace(year=opened.year + 1)
    except ValueError:  # opened on 29 February
        anniversary = date(opened.year + 1, 3, 1)
    return "long" if closed > anniversary else "short"


def realised_gain(side: Side, qty: Decimal, price: Decimal, entry: Decimal) -> Decimal:
    """Gain of closing ``qty`` at ``price``: a sale closes a long, a buy covers a short."""
    per_share = price - entry if side is Side.SELL else entry - price
    return (qty * per_share).quantize(_CENT)


def _entry_price(d: DecisionRecord) -> Decimal | None:
    try:
        return Decimal(d.inputs.get("avg_entry_price") or "")
    except InvalidOperation:
        return None


def _decision_columns(
    d: DecisionRecord, history: list[DecisionEvent], tz: ZoneInfo
) -> dict[str, str]:
    decided = [e for e in history if e.status in _DECIDED]
    last = decided[-1] if decided else None
    return {
        "decision_id": str(d.id),
        "decision_uid": d.uid,
        "account": d.account,
        "source": d.source.value,
        "symbol": d.symbol,
        "action": d.action.value,
        "decision_qty": str(d.qty),
        "reasons": ";".join(d.reasons),
        "status": d.status.value,
        "skip_reason": d.skip_reason.value if d.skip_reason else "",
        "created_at": _iso(d.created_at, tz),
        "execute_at": _iso(d.execute_at, tz),
        "decided_by": last.actor if last else "",
        "decided_at": _iso(last.at, tz) if last else "",
    }


def _order_columns(o: OrderRecord, updated_at: datetime, tz: ZoneInfo) -> dict[str, str]:
    filled = o.filled_qty > 0
    return {
        "client_order_id": o.client_order_id,
        "order_side": o.side.value,
        "order_type": o.type.value,
        "order_qty": str(o.qty),
        "order_status": o.status,
        "order_error": _s(o.error),
        "filled_qty": str(o.filled_qty),
        "filled_avg_price": _s(o.filled_avg_price),
        "filled_at": _iso(updated_at, tz) if filled else "",
    }


class Exporter:
    def __init__(self, store: ExportStore, tz: ZoneInfo):
        self.store, self.tz = store, tz

    def rows(
        self, *, since: datetime | None, accounts: Collection[str] | None
    ) -> list[dict[str, str]]:
        decisions = [
            d
            for d in self.store.list_decisions(DecisionFilter(since=since))
            if accounts is None or d.account in accounts
        ]
        orders = self.store.orders_for_decisions([d.id for d in decisions])
        out = []
        for d in decisions:
            base = _decision_columns(d, self.store.decision_history(d.id), self.tz)
            placed = orders.get(d.id, [])
            if not placed:
                out.append(self._complete(base))
            for o, updated_at in placed:
                row = {**base, **_order_columns(o, updated_at, self.tz)}
                row.update(self._exit_columns(d, o, updated_at))
                out.append(self._complete(row))
        return out

    def _exit_columns(self, d: DecisionRecord, o: OrderRecord, at: datetime) -> dict[str, str]:
        """Holding period and realised gain of a filled exit order; empty otherwise."""
        entry = _entry_price(d)
        closing = d.action in (Action.EXIT, Action.TRIM) and o.type is OrderType.MARKET
        if not closing or o.filled_qty <= 0 or o.filled_avg_price is None or entry is None:
            return {}
        cols = {
            "avg_entry_price": str(entry),
            "realised_gain": str(realised_gain(o.side, o.filled_qty, o.filled_avg_price, entry)),
        }
        opened = self.store.position_opened_at(d.account, d.symbol, at)
        if opened is not None:
            opened_on = opened[0].astimezone(self.tz).date()
            closed_on = at.astimezone(self.tz).date()
            cols |= {
                "opened_at": _iso(opened[0], self.tz),
                "opened_at_source": opened[1],
                "holding_days": str((closed_on - opened_on).days),
                "holding_term": holding_term(opened_on, closed_on),
            }
        return cols

    @staticmethod
    def _complete(row: dict[str, str]) -> dict[str, str]:
        return {c: row.get(c, "") for c in COLUMNS}


def write_csv(rows: Iterable[dict[str, str]], stream: TextIO) -> None:
    writer = csv.DictWriter(stream, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def write_jsonl(rows: Iterable[dict[str, str]], stream: TextIO) -> None:
    for row in rows:
        stream.write(json.dumps(row, ensure_ascii=False) + "\n")
