"""A simulated broker account (implements :class:`rebalancerd.ports.Broker`).

It behaves like Alpaca where the daemon depends on it (error codes, stop orders
holding shares, ``client_order_id`` uniqueness) and is otherwise as simple as
possible: market orders fill at once at the current price, resting orders
never trigger. State and its JSON shape live in :mod:`.sim_state`.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from rebalancerd.adapters.sim_state import (
    MARKET_TZ,
    SimOrder,
    SimPosition,
    SimState,
    seed_state,
    spec_prices,
)
from rebalancerd.config.portfolio_file import SimPortfolioSpec
from rebalancerd.domain.model import OrderStatus, OrderType, Side
from rebalancerd.errors import BrokerRejection
from rebalancerd.ports import AccountSnapshot, BrokerOrder, BrokerPosition, Clock, OrderRequest

# Alpaca's error codes for the cases the simulator reproduces.
CODE_INVALID = "40010001"  # 422: malformed request, duplicate client_order_id
CODE_FORBIDDEN = "40310000"  # 403: insufficient qty available / buying power
CODE_NOT_FOUND = "40410000"  # 404: order not found
CODE_UNPROCESSABLE = "42210000"  # 422: valid request the broker cannot act on


class SimStateStore(Protocol):
    """The part of :class:`rebalancerd.ports.Store` the simulator needs."""

    def load_sim_state(self, account: str) -> dict[str, Any] | None: ...

    def save_sim_state(self, account: str, state: dict[str, Any]) -> None: ...


class SimBroker:
    """One simulated account whose state persists in the store.

    **Seeding.** The first time an account is used and the store holds no
    state for it, the state is seeded from the portfolio file: cash,
    positions (a file date ``opened_at`` becomes 00:00 America/New_York in
    UTC), catalysts, resting open orders (uuid4 ids, a generated
    ``client_order_id`` when the file gives none, status ``new``) and market
    prices (positions' ``current_price`` plus ``prices``). From then on the
    simulator's own state is the truth: fills change cash and holdings, and a
    restart (a new instance on the same store) continues where it left off.

    **Price feed.** The portfolio file doubles as the price feed. When
    ``spec_fingerprint`` (the sha256 of the file's contents) differs from the
    one stored in the state, only the market prices are refreshed from the new
    file (symbols the file no longer prices keep their last price) and the new
    fingerprint is stored; cash, holdings and orders stay the simulator's own.
    ``set_price`` changes one price directly (tests, backtests).

    **Simplifications.** No margin: buying power is cash, and every buy (a
    short cover too) needs cash for ``qty × price``. The simulator never opens
    a short: a sell needs that many long shares available. Market orders fill
    completely at the current price whatever the time of day (the execution
    service decides when the market is open); a symbol with no price cannot be
    traded at market. Stop and limit orders rest (``new``) until cancelled,
    holding the shares they would close, and never trigger or expire. A
    position without a price is valued at its entry price.

    State is re-read from the store on every call, so several instances (the
    daemon and a CLI command) see each other's changes; one instance
    serialises its own calls with a lock.
    """

    def __init__(
        self,
        account: str,
        spec: SimPortfolioSpec,
        state_store: SimStateStore,
        clock: Clock,
        *,
        spec_fingerprint: str | None = None,
        tz: ZoneInfo = MARKET_TZ,
    ) -> None:
        self.account = account
        self._tz = tz
        self._spec = spec
        self._store = state_store
        self._clock = clock
        self._fingerprint = spec_fingerprint
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ state

    def _now(self) -> datetime:
        now = self._clock.now()
        return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)

    def _load(self) -> SimState:
        raw = self._store.load_sim_state(self.account)
        if raw is None:
            state = seed_state(self._spec, self._fingerprint, self._now(), self._tz)
            self._save(state)
            return state
        state = SimState.from_json(raw)
        if self._fingerprint is not None and state.spec_fingerprint != self._fingerprint:
            state.prices.update(spec_prices(self._spec))
            state.spec_fingerprint = self._fingerprint
            self._save(state)
        return state

    def _save(self, state: SimState) -> None:
        self._store.save_sim_state(self.account, state.to_json())

    @staticmethod
    def _held(state: SimState, symbol: str, side: Side) -> Decimal:
        """Quantity reserved by open orders on ``side`` for ``symbol``."""
        return sum(
            (
                o.remaining_qty
                for o in state.orders.values()
                if o.symbol == symbol and o.side is side and not o.status.is_final
            ),
            Decimal(0),
        )

    @classmethod
    def _available(cls, state: SimState, symbol: str, side: Side) -> Decimal:
        """Shares an order on ``side`` may close: sells close longs, buys shorts."""
        pos = state.positions.get(symbol)
        if pos is None or (pos.qty > 0) != (side is Side.SELL):
            return Decimal(0)
        return max(abs(pos.qty) - cls._held(state, symbol, side), Decimal(0))

    # ---------------------------------------------------------------- reading

    def get_account(self) -> AccountSnapshot:
        with self._lock:
            state = self._load()
            market = sum(
                (
                    p.qty * state.prices.get(sym, p.avg_entry_price)
                    for sym, p in state.positions.items()
                ),
                Decimal(0),
            )
            return AccountSnapshot(
                cash=state.cash, equity=state.cash + market, buying_power=state.cash
            )

    def get_positions(self) -> list[BrokerPosition]:
        with self._lock:
            state = self._load()
            out = []
            for sym in sorted(state.positions):
                p = state.positions[sym]
                closing = Side.SELL if p.qty > 0 else Side.BUY
                out.append(
                    BrokerPosition(
                        symbol=sym,
                        qty=p.qty,
                        qty_available=self._available(state, sym, closing),
                        avg_entry_price=p.avg_entry_price,
                        current_price=state.prices.get(sym),
                        opened_at=p.opened_at,
                        catalyst=p.catalyst,
                        catalyst_date=p.catalyst_date,
                    )
                )
            return out

    def get_open_orders(self) -> list[BrokerOrder]:
        with self._lock:
            state = self._load()
            return [o.to_broker_order() for o in state.orders.values() if not o.status.is_final]

    def get_order(self, order_id: str) -> BrokerOrder:
        with self._lock:
            order = self._load().orders.get(order_id)
            if order is None:
                raise BrokerRejection("order not found", code=CODE_NOT_FOUND)
            return order.to_broker_order()

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        with self._lock:
            found = _by_client_id(self._load(), client_order_id)
            return found.to_broker_order() if found else None

    def market_is_open(self) -> bool:
        """The simulated market is always open: orders fill at the current price
        whenever they are sent (``--now`` replays and demos rely on it)."""
        return True

    def latest_price(self, symbol: str) -> Decimal | None:
        """The simulator's market price (positions' and the file's ``prices``)."""
        with self._lock:
            return self._load().prices.get(symbol.strip().upper())

    # ---------------------------------------------------------------- writing

    def submit_order(self, request: OrderRequest) -> BrokerOrder:
        """Fill a market order at once, or rest a stop/limit order; see the class doc."""
        with self._lock:
            state = self._load()
            symbol = request.symbol.strip().upper()
            qty, side = request.qty, request.side
            if _by_client_id(state, request.client_order_id) is not None:
                raise BrokerRejection("client_order_id must be unique", code=CODE_INVALID)
            if not qty.is_finite() or qty <= 0:
                raise BrokerRejection("qty must be > 0", code=CODE_INVALID)
            stop = request.stop_price
            if request.type in (OrderType.STOP, OrderType.STOP_LIMIT) and (
                stop is None or stop <= 0
            ):
                raise BrokerRejection("stop_price is required", code=CODE_INVALID)

            pos = state.positions.get(symbol)
            closes = pos is not None and (pos.qty > 0) == (side is Side.SELL)
            if side is Side.SELL or closes:
                available = self._available(state, symbol, side)
                if qty > available:
                    raise BrokerRejection(
                        f"insufficient qty available for order "
                        f"(requested: {_fmt(qty)}, available: {_fmt(available)})",
                        code=CODE_FORBIDDEN,
                    )

            now = self._now()
            order = SimOrder(
                id=str(uuid.uuid4()),
                client_order_id=request.client_order_id,
                symbol=symbol,
                side=side,
                type=request.type,
                qty=qty,
                status=OrderStatus.NEW,
                submitted_at=now,
                time_in_force=request.time_in_force,
                stop_price=request.stop_price,
            )
            if request.type is OrderType.MARKET:
                price = state.prices.get(symbol)
                if price is None:
                    raise BrokerRejection(f"no price for {symbol}", code=CODE_UNPROCESSABLE)
                if side is Side.BUY and qty * price > state.cash:
                    raise BrokerRejection("insufficient buying power", code=CODE_FORBIDDEN)
                _fill(state, order, price, now)
            state.orders[order.id] = order
            self._save(state)
            return order.to_broker_order()

    def cancel_order(self, order_id: str) -> None:
        """Cancel an open order at once (Alpaca may answer ``pending_cancel`` first)."""
        with self._lock:
            state = self._load()
            order = state.orders.get(order_id)
            if order is None:
                raise BrokerRejection("order not found", code=CODE_NOT_FOUND)
            if order.status.is_final:
                raise BrokerRejection("order is not cancelable", code=CODE_UNPROCESSABLE)
            order.status = OrderStatus.CANCELED
            order.canceled_at = self._now()
            self._save(state)

    def set_price(self, symbol: str, price: Decimal) -> None:
        """Set one symbol's market price (a test and backtest hook)."""
        if not price.is_finite() or price <= 0:
            raise ValueError(f"price must be > 0, got {price}")
        with self._lock:
            state = self._load()
            state.prices[symbol.strip().upper()] = price
            self._save(state)


def _by_client_id(state: SimState, client_order_id: str) -> SimOrder | None:
    for order in state.orders.values():
        if order.client_order_id == client_order_id:
            return order
    return None


def _fill(state: SimState, order: SimOrder, price: Decimal, now: datetime) -> None:
    """Fill ``order`` completely at ``price`` (already validated) and book it."""
    signed = order.qty if order.side is Side.BUY else -order.qty
    state.cash -= signed * price
    pos = state.positions.get(order.symbol)
    if pos is None:
        state.positions[order.symbol] = SimPosition(
            symbol=order.symbol, qty=signed, avg_entry_price=price, opened_at=now
        )
    else:
        new_qty = pos.qty + signed
        if new_qty == 0:
            del state.positions[order.symbol]
        else:
            if (signed > 0) == (pos.qty > 0):  # adding to the position: re-average
                pos.avg_entry_price = (pos.qty * pos.avg_entry_price + signed * price) / new_qty
            pos.qty = new_qty
    order.status = OrderStatus.FILLED
    order.filled_qty = order.qty
    order.filled_avg_price = price
    order.filled_at = now


def _fmt(value: Decimal) -> str:
    """A quantity as Alpaca prints it: ``10``, ``2.5`` (no exponent, no trailing zeros)."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
