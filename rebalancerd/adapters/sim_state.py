"""The simulated broker's state: records, JSON (de)serialisation and seeding.

The state is a plain JSON-able dict in the store (``Store.save_sim_state``):
Decimals are strings, datetimes ISO 8601 in UTC, dates ISO dates. Its shape::

    {"version": 1,
     "spec_fingerprint": "<sha256 of the portfolio file>" | null,
     "cash": "25000.00",
     "positions": {"AMD": {"qty": "120", "avg_entry_price": "100.00",
                           "opened_at": "2026-10-26T04:00:00+00:00" | null,
                           "catalyst": "Earnings" | null,
                           "catalyst_date": "2026-11-04" | null}},
     "prices": {"AMD": "131.00"},
     "orders": {"<uuid>": {"id": ..., "client_order_id": ..., "symbol": ...,
                           "side": "sell", "type": "stop", "qty": "120",
                           "status": "new", "time_in_force": "gtc",
                           "stop_price": "85.00" | null, "limit_price": null,
                           "filled_qty": "0", "filled_avg_price": null,
                           "submitted_at": ..., "filled_at": null,
                           "canceled_at": null}}}

Orders are kept in submission order (JSON objects keep key order).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from rebalancerd.config.portfolio_file import SimPortfolioSpec
from rebalancerd.domain.model import OrderStatus, OrderType, Side
from rebalancerd.ports import BrokerOrder

STATE_VERSION = 1
MARKET_TZ = ZoneInfo("America/New_York")


@dataclass(slots=True)
class SimPosition:
    """A holding; ``qty`` is negative for a short."""

    symbol: str
    qty: Decimal
    avg_entry_price: Decimal
    opened_at: datetime | None = None
    catalyst: str | None = None
    catalyst_date: date | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "qty": str(self.qty),
            "avg_entry_price": str(self.avg_entry_price),
            "opened_at": _dt_out(self.opened_at),
            "catalyst": self.catalyst,
            "catalyst_date": self.catalyst_date.isoformat() if self.catalyst_date else None,
        }

    @classmethod
    def from_json(cls, symbol: str, raw: dict[str, Any]) -> SimPosition:
        catalyst_date = raw.get("catalyst_date")
        return cls(
            symbol=symbol,
            qty=Decimal(raw["qty"]),
            avg_entry_price=Decimal(raw["avg_entry_price"]),
            opened_at=_dt_in(raw.get("opened_at")),
            catalyst=raw.get("catalyst"),
            catalyst_date=date.fromisoformat(catalyst_date) if catalyst_date else None,
        )


@dataclass(slots=True)
class SimOrder:
    id: str
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    qty: Decimal
    status: OrderStatus
    submitted_at: datetime
    time_in_force: str = "day"
    stop_price: Decimal | None = None
    limit_price: Decimal | None = None
    filled_qty: Decimal = Decimal(0)
    filled_avg_price: Decimal | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None

    @property
    def remaining_qty(self) -> Decimal:
        return self.qty - self.filled_qty

    def to_broker_order(self) -> BrokerOrder:
        return BrokerOrder(
            id=self.id,
            client_order_id=self.client_order_id,
            symbol=self.symbol,
            side=self.side,
            type=self.type,
            qty=self.qty,
            status=self.status,
            filled_qty=self.filled_qty,
            filled_avg_price=self.filled_avg_price,
            stop_price=self.stop_price,
            time_in_force=self.time_in_force,
            submitted_at=self.submitted_at,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "symbol": self.symbol,
            "side": self.side.value,
            "type": self.type.value,
            "qty": str(self.qty),
            "status": self.status.value,
            "time_in_force": self.time_in_force,
            "stop_price": _dec_out(self.stop_price),
            "limit_price": _dec_out(self.limit_price),
            "filled_qty": str(self.filled_qty),
            "filled_avg_price": _dec_out(self.filled_avg_price),
            "submitted_at": _dt_out(self.submitted_at),
            "filled_at": _dt_out(self.filled_at),
            "canceled_at": _dt_out(self.canceled_at),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SimOrder:
        submitted_at = _dt_in(raw["submitted_at"])
        assert submitted_at is not None
        return cls(
            id=raw["id"],
            client_order_id=raw["client_order_id"],
            symbol=raw["symbol"],
            side=Side(raw["side"]),
            type=OrderType(raw["type"]),
            qty=Decimal(raw["qty"]),
            status=OrderStatus(raw["status"]),
            submitted_at=submitted_at,
            time_in_force=raw.get("time_in_force", "day"),
            stop_price=_dec_in(raw.get("stop_price")),
            limit_price=_dec_in(raw.get("limit_price")),
            filled_qty=Decimal(raw.get("filled_qty", "0")),
            filled_avg_price=_dec_in(raw.get("filled_avg_price")),
            filled_at=_dt_in(raw.get("filled_at")),
            canceled_at=_dt_in(raw.get("canceled_at")),
        )


@dataclass(slots=True)
class SimState:
    cash: Decimal
    positions: dict[str, SimPosition] = field(default_factory=dict)
    prices: dict[str, Decimal] = field(default_factory=dict)
    orders: dict[str, SimOrder] = field(default_factory=dict)
    spec_fingerprint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "spec_fingerprint": self.spec_fingerprint,
            "cash": str(self.cash),
            "positions": {sym: pos.to_json() for sym, pos in self.positions.items()},
            "prices": {sym: str(price) for sym, price in self.prices.items()},
            "orders": {oid: order.to_json() for oid, order in self.orders.items()},
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SimState:
        version = raw.get("version", STATE_VERSION)
        if version != STATE_VERSION:
            raise ValueError(f"unsupported simulated broker state version {version!r}")
        return cls(
            cash=Decimal(raw["cash"]),
            positions={
                sym: SimPosition.from_json(sym, pos) for sym, pos in raw["positions"].items()
            },
            prices={sym: Decimal(price) for sym, price in raw["prices"].items()},
            orders={oid: SimOrder.from_json(order) for oid, order in raw["orders"].items()},
            spec_fingerprint=raw.get("spec_fingerprint"),
        )


def spec_prices(spec: SimPortfolioSpec) -> dict[str, Decimal]:
    """The market prices a portfolio file carries: positions' then ``prices``."""
    prices = {p.symbol: p.current_price for p in spec.positions if p.current_price is not None}
    prices.update({sym.strip().upper(): price for sym, price in spec.prices.items()})
    return prices


def seed_state(
    spec: SimPortfolioSpec, fingerprint: str | None, now: datetime, tz: ZoneInfo = MARKET_TZ
) -> SimState:
    """The starting state a portfolio file describes (zero-qty positions are dropped)."""
    state = SimState(cash=spec.cash, prices=spec_prices(spec), spec_fingerprint=fingerprint)
    for p in spec.positions:
        if p.qty == 0:
            continue
        state.positions[p.symbol] = SimPosition(
            symbol=p.symbol,
            qty=p.qty,
            avg_entry_price=p.avg_entry_price,
            opened_at=market_midnight_utc(p.opened_at, tz) if p.opened_at else None,
            catalyst=p.catalyst,
            catalyst_date=p.catalyst_date,
        )
    for o in spec.open_orders:
        order_id = str(uuid.uuid4())
        state.orders[order_id] = SimOrder(
            id=order_id,
            client_order_id=o.client_order_id or f"sim-seed-{order_id}",
            symbol=o.symbol,
            side=Side(o.side),
            type=OrderType(o.type),
            qty=o.qty,
            status=OrderStatus.NEW,
            submitted_at=now,
            time_in_force=o.time_in_force,
            stop_price=o.stop_price,
            limit_price=o.limit_price,
        )
    return state


def market_midnight_utc(day: date, tz: ZoneInfo = MARKET_TZ) -> datetime:
    """00:00 on ``day`` in the configured zone (a file's dates are market dates), in UTC."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _dec_out(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _dec_in(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _dt_out(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _dt_in(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
