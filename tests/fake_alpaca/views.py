"""The account's JSON views (GET bodies), as Alpaca sends them."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tests.fake_alpaca.records import ApiError, FakeFill, FakeOrder, FakePosition, asset_id, fmt, ts


class JsonViews:
    """Mixed into FakeAlpacaState: builds response bodies from its records."""

    lock: threading.RLock
    account_id: str
    account_number: str
    cash: Decimal
    buying_power: Decimal | None
    positions: dict[str, FakePosition]
    orders: dict[str, FakeOrder]
    fills: list[FakeFill]
    market_open: bool

    def now(self) -> datetime:
        raise NotImplementedError

    def held_for_orders(self, symbol: str) -> Decimal:
        raise NotImplementedError

    def account_buying_power(self) -> Decimal:
        return self.cash if self.buying_power is None else self.buying_power

    def account_json(self) -> dict[str, Any]:
        with self.lock:
            long_mv = sum(
                (p.qty * p.current_price for p in self.positions.values() if p.qty > 0),
                Decimal(0),
            )
            short_mv = sum(
                (p.qty * p.current_price for p in self.positions.values() if p.qty < 0),
                Decimal(0),
            )
            equity = self.cash + long_mv + short_mv
            bp = fmt(self.account_buying_power())
            return {
                "id": self.account_id,
                "account_number": self.account_number,
                "status": "ACTIVE",
                "crypto_status": "ACTIVE",
                "currency": "USD",
                "cash": fmt(self.cash),
                "portfolio_value": fmt(equity),
                "non_marginable_buying_power": bp,
                "accrued_fees": "0",
                "pending_transfer_in": "0",
                "pattern_day_trader": False,
                "trade_suspended_by_user": False,
                "trading_blocked": False,
                "transfers_blocked": False,
                "account_blocked": False,
                "created_at": "2024-01-02T15:04:05.123456Z",
                "shorting_enabled": False,
                "long_market_value": fmt(long_mv),
                "short_market_value": fmt(short_mv),
                "equity": fmt(equity),
                "last_equity": fmt(equity),
                "multiplier": "1",
                "buying_power": bp,
                "initial_margin": "0",
                "maintenance_margin": "0",
                "sma": "0",
                "daytrade_count": 0,
                "last_maintenance_margin": "0",
                "daytrading_buying_power": "0",
                "regt_buying_power": bp,
            }

    def position_json(self, symbol: str) -> dict[str, Any]:
        with self.lock:
            pos = self.positions.get(symbol.upper())
            if pos is None:
                raise ApiError(404, 40410000, "position does not exist")
            qty, price, entry = pos.qty, pos.current_price, pos.avg_entry_price
            held = self.held_for_orders(pos.symbol) if qty > 0 else Decimal(0)
        last = pos.lastday_price or price
        value, cost = qty * price, qty * entry
        plpc = (value - cost) / abs(cost) if cost else Decimal(0)
        change = (price - last) / last if last else Decimal(0)
        return {
            "asset_id": asset_id(pos.symbol),
            "symbol": pos.symbol,
            "exchange": "NASDAQ",
            "asset_class": "us_equity",
            "asset_marginable": True,
            "avg_entry_price": fmt(entry),
            "qty": fmt(qty),
            "qty_available": fmt(qty - held),
            "side": "long" if qty > 0 else "short",
            "market_value": fmt(value),
            "cost_basis": fmt(cost),
            "unrealized_pl": fmt(value - cost),
            "unrealized_plpc": fmt(round(plpc, 10)),
            "unrealized_intraday_pl": fmt(qty * (price - last)),
            "unrealized_intraday_plpc": fmt(round(change, 10)),
            "current_price": fmt(price),
            "lastday_price": fmt(last),
            "change_today": fmt(round(change, 10)),
        }

    def positions_json(self) -> list[dict[str, Any]]:
        with self.lock:
            symbols = sorted(self.positions)
            return [self.position_json(s) for s in symbols]

    def fills_page(
        self, *, direction: str = "desc", page_size: int = 100, page_token: str | None = None
    ) -> list[dict[str, Any]]:
        with self.lock:
            fills = sorted(self.fills, key=lambda f: (f.at, f.seq), reverse=direction != "asc")
        start = 0
        if page_token:
            ids = [f.id for f in fills]
            if page_token not in ids:
                raise ApiError(422, 42210000, "invalid page_token")
            start = ids.index(page_token) + 1
        size = max(1, min(page_size, 100))
        return [f.to_json(self.account_id) for f in fills[start : start + size]]

    def asset_json(self, symbol: str) -> dict[str, Any]:
        return {
            "id": asset_id(symbol.upper()),
            "class": "us_equity",
            "exchange": "NASDAQ",
            "symbol": symbol.upper(),
            "name": f"{symbol.upper()} Common Stock",
            "status": "active",
            "tradable": True,
            "marginable": True,
            "shortable": True,
            "easy_to_borrow": True,
            "fractionable": True,
            "attributes": [],
        }

    def clock_json(self) -> dict[str, Any]:
        now = self.now()
        return {
            "timestamp": now.astimezone(UTC).isoformat(),
            "is_open": self.market_open,
            "next_open": ts(now + timedelta(days=1)),
            "next_close": ts(now + timedelta(hours=6)),
        }
