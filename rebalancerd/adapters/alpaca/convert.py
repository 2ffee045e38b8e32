"""Pure conversions between alpaca-py models and the port records.

Every number crosses the boundary as ``Decimal(str(value))``: alpaca-py keeps
money and quantities as strings (or floats for some order fields), and going
through ``str`` keeps a float's shortest representation (``0.1``) instead of
its binary expansion. Outgoing quantities must be floats (alpaca-py's request
models type them so); :func:`to_float` refuses a quantity a float cannot carry
exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from alpaca.trading import enums as ae
from alpaca.trading.models import Order, Position, TradeAccount
from alpaca.trading.requests import MarketOrderRequest, StopOrderRequest

from rebalancerd.domain.model import OrderStatus, OrderType, Side
from rebalancerd.errors import BrokerError, BrokerRejection
from rebalancerd.ports import AccountSnapshot, BrokerOrder, BrokerPosition, OrderRequest

#: Alpaca order statuses onto ours. Those we have no name for go to the
#: nearest state with the same meaning for the daemon (open vs final).
STATUS_MAP: dict[str, OrderStatus] = {
    "new": OrderStatus.NEW,
    "accepted": OrderStatus.ACCEPTED,
    "pending_new": OrderStatus.PENDING_NEW,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "pending_cancel": OrderStatus.PENDING_CANCEL,
    "canceled": OrderStatus.CANCELED,
    "rejected": OrderStatus.REJECTED,
    "expired": OrderStatus.EXPIRED,
    "done_for_day": OrderStatus.DONE_FOR_DAY,
    # open states without a name of their own
    "pending_replace": OrderStatus.NEW,
    "accepted_for_bidding": OrderStatus.ACCEPTED,
    "stopped": OrderStatus.NEW,
    "suspended": OrderStatus.ACCEPTED,
    "pending_review": OrderStatus.PENDING_NEW,
    "held": OrderStatus.ACCEPTED,
    # done for the day, settlement pending
    "calculated": OrderStatus.DONE_FOR_DAY,
    # a replaced order is dead; its replacement is a separate order
    "replaced": OrderStatus.CANCELED,
}

#: Alpaca order types onto ours; a trailing stop holds shares like a stop.
TYPE_MAP: dict[str, OrderType] = {
    "market": OrderType.MARKET,
    "limit": OrderType.LIMIT,
    "stop": OrderType.STOP,
    "stop_limit": OrderType.STOP_LIMIT,
    "trailing_stop": OrderType.STOP,
}

SIDE_MAP: dict[str, Side] = {"buy": Side.BUY, "sell": Side.SELL}


def _value(x: Any) -> str:
    """The string value of an enum member or a plain value."""
    return str(getattr(x, "value", x))


def dec(value: Any, *, field: str = "value") -> Decimal:
    """A Decimal from a string, int or float, never through binary float digits."""
    if value is None or isinstance(value, bool):
        raise BrokerError(f"Alpaca sent no usable {field}: {value!r}")
    if isinstance(value, Decimal):
        return value
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        raise BrokerError(f"Alpaca sent a non-numeric {field}: {value!r}") from None
    if not result.is_finite():
        raise BrokerError(f"Alpaca sent a non-finite {field}: {value!r}")
    return result


def dec_or_none(value: Any, *, field: str = "value") -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return dec(value, field=field)


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime (a naive one is taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def parse_timestamp(text: str) -> datetime:
    """An RFC 3339 timestamp as Alpaca sends it (``Z``, up to 9 fraction digits)."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    head, sep, tail = value.partition(".")
    if sep:
        digits = len(tail) - len(tail.lstrip("0123456789"))
        tail = tail[:digits][:6].ljust(6, "0") + tail[digits:]
        value = f"{head}.{tail}"
    return as_utc(datetime.fromisoformat(value))


def account_from_alpaca(account: TradeAccount) -> AccountSnapshot:
    equity = account.equity if account.equity is not None else account.portfolio_value
    return AccountSnapshot(
        cash=dec(account.cash, field="cash"),
        equity=dec(equity, field="equity"),
        buying_power=dec(account.buying_power, field="buying_power"),
    )


def position_from_alpaca(position: Position, opened_at: datetime | None = None) -> BrokerPosition:
    """A BrokerPosition; a short position keeps Alpaca's negative ``qty``."""
    qty = dec(position.qty, field=f"{position.symbol} qty")
    if _value(position.side) == "short" and qty > 0:
        qty = -qty
    available = dec_or_none(position.qty_available, field=f"{position.symbol} qty_available")
    return BrokerPosition(
        symbol=position.symbol,
        qty=qty,
        qty_available=qty if available is None else available,
        avg_entry_price=dec(position.avg_entry_price, field=f"{position.symbol} avg_entry_price"),
        current_price=dec_or_none(position.current_price, field=f"{position.symbol} price"),
        opened_at=utc(opened_at),
    )


def order_from_alpaca(order: Order) -> BrokerOrder:
    if order.symbol is None or order.side is None:
        raise BrokerError(f"Alpaca order {order.id} has no symbol/side (multi-leg order?)")
    kind = order.type if order.type is not None else order.order_type
    type_name = _value(kind) if kind is not None else "market"
    status_name = _value(order.status)
    try:
        order_type = TYPE_MAP[type_name]
        status = STATUS_MAP[status_name]
        side = SIDE_MAP[_value(order.side)]
    except KeyError as exc:
        raise BrokerError(f"Alpaca order {order.id}: unknown value {exc.args[0]!r}") from None
    qty = dec_or_none(order.qty, field="order qty")
    filled = dec_or_none(order.filled_qty, field="filled_qty") or Decimal(0)
    return BrokerOrder(
        id=str(order.id),
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=side,
        type=order_type,
        qty=qty if qty is not None else filled,
        status=status,
        filled_qty=filled,
        filled_avg_price=dec_or_none(order.filled_avg_price, field="filled_avg_price"),
        stop_price=dec_or_none(order.stop_price, field="stop_price"),
        time_in_force=_value(order.time_in_force),
        submitted_at=utc(order.submitted_at),
    )


def to_float(value: Decimal, *, field: str) -> float:
    """A float that prints back as exactly ``value`` (alpaca-py sends floats)."""
    result = float(value)
    if Decimal(repr(result)) != value:
        raise BrokerRejection(
            f"{field} {value} cannot be sent exactly (alpaca-py sends floats)",
            code="not_representable",
        )
    return result


def to_alpaca_request(request: OrderRequest) -> MarketOrderRequest | StopOrderRequest:
    """The alpaca-py request for an order: exits as market orders, stops as GTC stops."""
    if request.qty <= 0:
        raise BrokerRejection(f"order qty must be positive, got {request.qty}", code="invalid_qty")
    side = ae.OrderSide(request.side.value)
    qty = to_float(request.qty, field="qty")
    try:
        tif = ae.TimeInForce(request.time_in_force)
    except ValueError:
        raise BrokerRejection(
            f"unknown time_in_force {request.time_in_force!r}", code="invalid_time_in_force"
        ) from None
    if request.type is OrderType.MARKET:
        return MarketOrderRequest(
            symbol=request.symbol,
            qty=qty,
            side=side,
            time_in_force=tif,
            client_order_id=request.client_order_id,
        )
    if request.type is OrderType.STOP:
        if request.stop_price is None or request.stop_price <= 0:
            raise BrokerRejection("a stop order needs a positive stop_price", code="invalid_stop")
        return StopOrderRequest(
            symbol=request.symbol,
            qty=qty,
            side=side,
            time_in_force=ae.TimeInForce.GTC,
            stop_price=to_float(request.stop_price, field="stop_price"),
            client_order_id=request.client_order_id,
        )
    raise BrokerRejection(
        f"order type {request.type.value} is not supported by the Alpaca adapter",
        code="unsupported_order_type",
    )
