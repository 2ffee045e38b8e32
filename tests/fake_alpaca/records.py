"""Records of the fake Alpaca account and their JSON as Alpaca sends it.

String numbers without exponent, UUID ids, ``null`` for the trailing-stop
fields, ``order_class: ""``: checked against the OpenAPI specification by
:mod:`tests.fake_alpaca.openapi_check`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

OPEN_STATUSES = frozenset(
    {"new", "accepted", "pending_new", "partially_filled", "pending_cancel", "held"}
)
_NS = uuid.UUID("6f1d2a7e-0000-4000-8000-a1ba3ca0fa4e")


def fmt(value: Decimal) -> str:
    """Alpaca-style decimal string: no exponent, no trailing zeros."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def ts(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def asset_id(symbol: str) -> str:
    return str(uuid.uuid5(_NS, symbol))


class ApiError(Exception):
    """An Alpaca error response: HTTP status and JSON body ``{"code", "message", ...}``."""

    def __init__(self, status: int, code: int, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"code": code, "message": message, **extra}


@dataclass
class FakePosition:
    symbol: str
    qty: Decimal
    avg_entry_price: Decimal
    current_price: Decimal
    lastday_price: Decimal | None = None


@dataclass
class FakeOrder:
    id: str
    client_order_id: str
    symbol: str
    side: str
    type: str
    qty: Decimal
    time_in_force: str
    stop_price: Decimal | None
    status: str
    created_at: datetime
    updated_at: datetime
    filled_qty: Decimal = Decimal(0)
    filled_avg_price: Decimal | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    cancel_polls: int = 0

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def to_json(self) -> dict[str, Any]:
        none = None
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": ts(self.created_at),
            "updated_at": ts(self.updated_at),
            "submitted_at": ts(self.created_at),
            "filled_at": ts(self.filled_at) if self.filled_at else none,
            "expired_at": none,
            "canceled_at": ts(self.canceled_at) if self.canceled_at else none,
            "failed_at": none,
            "replaced_at": none,
            "replaced_by": none,
            "replaces": none,
            "asset_id": asset_id(self.symbol),
            "symbol": self.symbol,
            "asset_class": "us_equity",
            "notional": none,
            "qty": fmt(self.qty),
            "filled_qty": fmt(self.filled_qty),
            "filled_avg_price": fmt(self.filled_avg_price) if self.filled_avg_price else none,
            "order_class": "",
            "order_type": self.type,
            "type": self.type,
            "side": self.side,
            "position_intent": "sell_to_close" if self.side == "sell" else "buy_to_open",
            "time_in_force": self.time_in_force,
            "limit_price": none,
            "stop_price": fmt(self.stop_price) if self.stop_price is not None else none,
            "status": self.status,
            "extended_hours": False,
            "legs": none,
            "trail_percent": none,
            "trail_price": none,
            "hwm": none,
        }


@dataclass
class FakeFill:
    id: str
    seq: int
    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    at: datetime
    order_id: str
    cum_qty: Decimal
    leaves_qty: Decimal
    order_status: str

    def to_json(self, account_id: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "account_id": account_id,
            "activity_type": "FILL",
            "transaction_time": ts(self.at),
            "type": "fill" if self.leaves_qty == 0 else "partial_fill",
            "price": fmt(self.price),
            "qty": fmt(self.qty),
            "side": self.side,
            "symbol": self.symbol,
            "leaves_qty": fmt(self.leaves_qty),
            "order_id": self.order_id,
            "cum_qty": fmt(self.cum_qty),
            "order_status": self.order_status,
        }
