"""The fake Alpaca account: cash, positions, orders and the fill history.

Thread-safe (one lock). Stop orders rest and hold their shares; market orders
fill at once at a settable price (or partially, or not while the market is
closed); cancel may pass through ``pending_cancel`` for a number of polls.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tests.fake_alpaca.records import ApiError, FakeFill, FakeOrder, FakePosition, fmt
from tests.fake_alpaca.views import JsonViews


class FakeAlpacaState(JsonViews):
    """One account. Settings (public attributes) may be changed by tests at any time."""

    def __init__(
        self, *, cash: Decimal = Decimal("100000"), now: Callable[[], datetime] | None = None
    ):
        self.lock = threading.RLock()
        self.account_id = str(uuid.uuid4())
        self.account_number = "PA3FAKE00001"
        self.cash = cash
        self.buying_power: Decimal | None = None  # None: equal to cash (multiplier 1)
        self.positions: dict[str, FakePosition] = {}
        self.orders: dict[str, FakeOrder] = {}
        self.by_client: dict[str, str] = {}
        self.fills: list[FakeFill] = []
        self.prices: dict[str, Decimal] = {}
        self.default_price = Decimal("100")
        #: fraction of a market order filled at once (the rest stays open); None: all
        self.partial_fill: Decimal | None = None
        self.market_open = True
        #: polls of GET /v2/orders/{id} an order stays pending_cancel after DELETE
        self.cancel_pending_polls = 0
        #: Alpaca refuses a second order with the same client_order_id (422); tests
        #: switch this off to prove the client never re-sends blindly on its own
        self.unique_client_order_ids = True
        #: symbols whose orders are refused (422 "not tradable"), to test rejections
        self.untradable: set[str] = set()
        #: the market-data API answers 403 (an account without data access)
        self.data_forbidden = False
        self._now = now or (lambda: datetime.now(UTC))
        self._seq = 0

    def now(self) -> datetime:
        return self._now()

    # ----------------------------------------------------------------- set-up

    def price(self, symbol: str) -> Decimal:
        if symbol in self.prices:
            return self.prices[symbol]
        pos = self.positions.get(symbol)
        return pos.current_price if pos else self.default_price

    def latest_trade_json(self, symbol: str) -> dict[str, Any]:
        """The market-data API's latest trade (``/v2/stocks/trades/latest``) at the price."""
        with self.lock:
            self._seq += 1
            stamp = self.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            return {"t": stamp, "x": "V", "p": float(self.price(symbol)), "s": 100,
                    "c": ["@"], "i": self._seq, "z": "C"}  # fmt: skip

    def set_price(self, symbol: str, price: Decimal) -> None:
        with self.lock:
            self.prices[symbol] = price
            if symbol in self.positions:
                self.positions[symbol].current_price = price

    def add_position(
        self,
        symbol: str,
        qty: Decimal,
        avg_entry_price: Decimal,
        current_price: Decimal | None = None,
        *,
        opened_at: datetime | None = None,
    ) -> None:
        """A held position; with ``opened_at`` also the buy fill that opened it."""
        with self.lock:
            price = current_price if current_price is not None else avg_entry_price
            self.positions[symbol] = FakePosition(symbol, qty, avg_entry_price, price)
            if opened_at is not None:
                side = "buy" if qty > 0 else "sell_short"
                self._record_fill(symbol, side, abs(qty), avg_entry_price, opened_at)

    def trade(self, symbol: str, side: str, qty: Decimal, price: Decimal, at: datetime) -> FakeFill:
        """A past execution: moves the position and cash and records the fill."""
        with self.lock:
            self._apply(symbol, side, qty, price)
            return self._record_fill(symbol, side, qty, price, at)

    # ----------------------------------------------------------------- internals

    def _record_fill(
        self,
        symbol: str,
        side: str,
        qty: Decimal,
        price: Decimal,
        at: datetime,
        order: FakeOrder | None = None,
    ) -> FakeFill:
        self._seq += 1
        oid = order.id if order else str(uuid.uuid4())
        stamp = at.astimezone(UTC)
        fill = FakeFill(
            id=f"{stamp:%Y%m%d%H%M%S}{stamp.microsecond // 1000:03d}::{uuid.uuid4()}",
            seq=self._seq,
            symbol=symbol,
            side=side,
            qty=qty,
            price=price,
            at=stamp,
            order_id=oid,
            cum_qty=order.filled_qty if order else qty,
            leaves_qty=order.remaining if order else Decimal(0),
            order_status=order.status if order else "filled",
        )
        self.fills.append(fill)
        return fill

    def _apply(self, symbol: str, side: str, qty: Decimal, price: Decimal) -> None:
        signed = qty if side == "buy" else -qty
        pos = self.positions.get(symbol)
        old = pos.qty if pos else Decimal(0)
        new = old + signed
        self.cash -= signed * price
        if new == 0:
            self.positions.pop(symbol, None)
            return
        if pos is None or (old > 0) != (new > 0) or old == 0:
            self.positions[symbol] = FakePosition(symbol, new, price, self.price(symbol))
            return
        if abs(new) > abs(old):  # adding to the position moves the average
            pos.avg_entry_price = (old * pos.avg_entry_price + signed * price) / new
        pos.qty = new

    def held_for_orders(self, symbol: str) -> Decimal:
        """Shares held by open sell orders (a resting stop holds its shares)."""
        held = Decimal(0)
        for order in self.orders.values():
            if order.is_open and order.symbol == symbol and order.side == "sell":
                held += order.remaining
        return held

    def _fill(self, order: FakeOrder, qty: Decimal, price: Decimal) -> None:
        now = self.now()
        prev = order.filled_qty * (order.filled_avg_price or Decimal(0))
        order.filled_qty += qty
        order.filled_avg_price = (prev + qty * price) / order.filled_qty
        order.status = "filled" if order.remaining == 0 else "partially_filled"
        order.updated_at = now
        if order.remaining == 0:
            order.filled_at = now
        self._apply(order.symbol, order.side, qty, price)
        self._record_fill(order.symbol, order.side, qty, price, now, order)

    # ----------------------------------------------------------------- orders

    def place_order(self, body: Any) -> FakeOrder:
        """POST /v2/orders: validate, check shares/buying power, fill a market order."""
        if not isinstance(body, dict):
            raise ApiError(422, 40010000, "request body must be a JSON object")
        with self.lock:
            order = self._new_order(body)
            if self.unique_client_order_ids and order.client_order_id in self.by_client:
                raise ApiError(422, 40010001, "client_order_id must be unique")
            if order.symbol in self.untradable and order.type == "market":
                raise ApiError(422, 42210000, f"asset {order.symbol} is not tradable")
            price = self.price(order.symbol)
            if order.side == "sell":
                pos = self.positions.get(order.symbol)
                existing = pos.qty if pos and pos.qty > 0 else Decimal(0)
                held = self.held_for_orders(order.symbol)
                available = existing - held
                if order.qty > available:
                    raise ApiError(
                        403,
                        40310000,
                        f"insufficient qty available for order (requested: {fmt(order.qty)}, "
                        f"available: {fmt(available)})",
                        available=fmt(available),
                        existing_qty=fmt(existing),
                        held_for_orders=fmt(held),
                        symbol=order.symbol,
                    )
            elif order.type == "market" and order.qty * price > self.account_buying_power():
                raise ApiError(403, 40310000, "insufficient buying power")
            self.orders[order.id] = order
            self.by_client[order.client_order_id] = order.id
            if order.type == "market" and self.market_open:
                qty = order.qty
                if self.partial_fill is not None:
                    qty = order.qty * self.partial_fill
                if qty > 0:
                    self._fill(order, qty, price)
            return order

    def _new_order(self, body: dict[str, Any]) -> FakeOrder:
        def need(key: str) -> Any:
            if body.get(key) in (None, ""):
                raise ApiError(422, 40010000, f"{key} is required")
            return body[key]

        symbol = str(need("symbol")).upper()
        side = need("side")
        kind = need("type")
        tif = need("time_in_force")
        if side not in ("buy", "sell"):
            raise ApiError(422, 40010000, f"invalid side {side!r}")
        if kind not in ("market", "stop"):
            raise ApiError(422, 40010000, f"order type {kind!r} not supported by the fake")
        if tif not in ("day", "gtc", "opg", "cls", "ioc", "fok"):
            raise ApiError(422, 40010000, f"invalid time_in_force {tif!r}")
        try:
            qty = Decimal(str(need("qty")))
        except ArithmeticError:
            raise ApiError(422, 40010000, "qty must be a number") from None
        if not qty.is_finite() or qty <= 0:
            raise ApiError(422, 40010000, "qty must be > 0")
        stop = body.get("stop_price")
        stop_price = Decimal(str(stop)) if stop is not None else None
        if kind == "stop" and (stop_price is None or stop_price <= 0):
            raise ApiError(422, 40010000, "stop_price is required for stop orders")
        client_id = str(body.get("client_order_id") or uuid.uuid4())
        if len(client_id) > 48:
            raise ApiError(422, 40010000, "client_order_id must be at most 48 characters")
        now = self.now()
        return FakeOrder(
            id=str(uuid.uuid4()),
            client_order_id=client_id,
            symbol=symbol,
            side=side,
            type=kind,
            qty=qty,
            time_in_force=tif,
            stop_price=stop_price,
            status="new" if kind == "stop" else "accepted",
            created_at=now,
            updated_at=now,
        )

    def get_order(self, order_id: str, *, poll: bool = False) -> FakeOrder:
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                raise ApiError(404, 40410000, "order not found")
            if poll and order.status == "pending_cancel":
                order.cancel_polls -= 1
                if order.cancel_polls <= 0:
                    self._canceled(order)
            return order

    def get_by_client_id(self, client_order_id: str) -> FakeOrder:
        with self.lock:
            oid = self.by_client.get(client_order_id)
            if oid is None:
                raise ApiError(404, 40410000, "order not found")
            return self.orders[oid]

    def cancel(self, order_id: str) -> None:
        with self.lock:
            order = self.get_order(order_id)
            if order.status == "pending_cancel":
                return
            if not order.is_open:
                raise ApiError(422, 42210000, f"order is not cancelable (status {order.status})")
            if self.cancel_pending_polls > 0:
                order.status = "pending_cancel"
                order.cancel_polls = self.cancel_pending_polls
                order.updated_at = self.now()
            else:
                self._canceled(order)

    def _canceled(self, order: FakeOrder) -> None:
        order.status = "canceled"
        order.canceled_at = order.updated_at = self.now()

    def fill_order(self, order_id: str, price: Decimal | None = None) -> FakeOrder:
        """Fill what remains of an open order (a stop triggering, the market opening)."""
        with self.lock:
            order = self.get_order(order_id)
            if order.is_open and order.remaining > 0:
                self._fill(order, order.remaining, price or self.price(order.symbol))
            return order

    def open_orders(
        self,
        *,
        limit: int = 50,
        direction: str = "desc",
        until: datetime | None = None,
        after: datetime | None = None,
        symbols: set[str] | None = None,
    ) -> list[FakeOrder]:
        with self.lock:
            found = [
                o
                for o in self.orders.values()
                if o.is_open
                and (until is None or o.created_at < until)
                and (after is None or o.created_at > after)
                and (symbols is None or o.symbol in symbols)
            ]
        found.sort(key=lambda o: o.created_at, reverse=direction != "asc")
        return found[: max(1, min(limit, 500))]

    def close_all(self) -> list[dict[str, Any]]:
        """DELETE /v2/positions: a market order per position, as Alpaca answers it."""
        out: list[dict[str, Any]] = []
        with self.lock:
            for symbol, pos in list(self.positions.items()):
                body = {
                    "symbol": symbol,
                    "qty": str(abs(pos.qty)),
                    "side": "sell" if pos.qty > 0 else "buy",
                    "type": "market",
                    "time_in_force": "day",
                }
                try:
                    order = self.place_order(body)
                except ApiError as err:
                    out.append({"symbol": symbol, "status": err.status, "body": err.body})
                    continue
                out.append({"symbol": symbol, "status": 200, "body": order.to_json()})
        return out
