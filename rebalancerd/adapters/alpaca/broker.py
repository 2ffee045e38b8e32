"""The Broker port on Alpaca, through alpaca-py's TradingClient.

What this adds to alpaca-py (see /work/shared/alpaca/README.md):

- a timeout on every HTTP request (alpaca-py sets none);
- our own retries instead of alpaca-py's (which re-POSTs orders on 429/504
  after a fixed 3 s): exponential backoff honouring ``Retry-After`` for reads
  and cancels; an order is never re-sent blindly: after a transient failure it
  is looked up by ``client_order_id`` first and only re-sent when Alpaca says
  it does not exist (404); a 422 "client_order_id must be unique" returns the
  order already there;
- errors translated to TransientBrokerError / BrokerRejection, numbers to
  Decimal, statuses to ours; position opening times from the FILL activities.

Requests per read: get_account 1, get_open_orders 1 (500 orders a page),
get_positions 1 + the activity pages the opening-time walk needs (at most
``activity_pages``), whatever the number of positions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar
from uuid import UUID

from alpaca.common.enums import Sort
from alpaca.data.enums import DataFeed
from alpaca.data.models import Trade
from alpaca.data.requests import StockLatestTradeRequest
from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.models import Order, Position, TradeAccount
from alpaca.trading.requests import GetOrdersRequest

from rebalancerd.adapters.alpaca.activities import FILL_PATH, MAX_PAGES, FillHistory
from rebalancerd.adapters.alpaca.client import RetryPolicy, TimeoutDataClient, TimeoutTradingClient
from rebalancerd.adapters.alpaca.convert import (
    account_from_alpaca,
    dec,
    dec_or_none,
    order_from_alpaca,
    position_from_alpaca,
    to_alpaca_request,
)
from rebalancerd.adapters.alpaca.errors import (
    DUPLICATE_CLIENT_ORDER_ID,
    AlpacaRejection,
    is_duplicate_client_order_id,
    is_not_found,
)
from rebalancerd.domain.model import OrderStatus
from rebalancerd.errors import BrokerError, BrokerRejection, TransientBrokerError
from rebalancerd.ports import AccountSnapshot, BrokerOrder, BrokerPosition, OrderRequest

T = TypeVar("T")
M = TypeVar("M")

ORDERS_PAGE = 500  # Alpaca's maximum ``limit`` for GET /v2/orders
MAX_ORDER_PAGES = 10


def _expect(value: Any, cls: type[M]) -> M:
    if not isinstance(value, cls):
        raise BrokerError(f"alpaca-py returned {type(value).__name__}, expected {cls.__name__}")
    return value


class AlpacaBroker:
    """One Alpaca trading account (paper unless ``paper=False``)."""

    def __init__(
        self,
        api_key: str,
        secret_key: str,
        *,
        paper: bool = True,
        base_url: str | None = None,
        timeout: float = 10.0,
        max_attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 60.0,
        fill_history: bool = True,
        activity_pages: int = MAX_PAGES,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.base_url = base_url.rstrip("/") if base_url else None
        self.paper = paper
        self._client = TimeoutTradingClient(
            api_key, secret_key, paper=paper, url_override=self.base_url, timeout=timeout
        )
        self._retry = RetryPolicy(
            max_attempts=max_attempts,
            sleep=sleep,
            backoff=backoff,
            max_backoff=max_backoff,
            max_retry_after=max_retry_after,
        )
        self._fills = (
            FillHistory(self._activities_page, max_pages=activity_pages) if fill_history else None
        )
        self._data = TimeoutDataClient(
            api_key, secret_key, url_override=self.base_url, timeout=timeout
        )

    @property
    def endpoint(self) -> str:
        """The base URL requests go to."""
        return self._client.endpoint

    def __repr__(self) -> str:
        return f"AlpacaBroker({'paper' if self.paper else 'LIVE'} {self.endpoint})"

    # ------------------------------------------------------------------ plumbing

    def wait_seconds(self, attempt: int, error: BaseException | None) -> float:
        """See :meth:`RetryPolicy.wait_seconds`."""
        return self._retry.wait_seconds(attempt, error)

    def _call(self, fn: Callable[[], T]) -> T:
        return self._retry.call(fn)

    def _activities_page(self, params: dict[str, Any]) -> Any:
        return self._call(lambda: self._client.get(FILL_PATH, params))

    @staticmethod
    def _check_order_id(order_id: str) -> None:
        try:
            UUID(str(order_id))
        except ValueError:
            raise AlpacaRejection(
                f"order id {order_id!r} is not a UUID", code="invalid_order_id"
            ) from None

    # ------------------------------------------------------------------ reads

    def get_account(self) -> AccountSnapshot:
        account = self._call(self._client.get_account)
        return account_from_alpaca(_expect(account, TradeAccount))

    def get_positions(self) -> list[BrokerPosition]:
        """Positions with ``opened_at`` from the fill history where it can be found.

        A transient failure of the activity walk fails the call (so no position
        is recorded as "first seen" by mistake); a rejection of it (no
        permission) only leaves ``opened_at`` empty.
        """
        raw = self._call(self._client.get_all_positions)
        positions = [_expect(p, Position) for p in _expect(raw, list)]
        opened: dict[str, datetime] = {}
        if self._fills is not None and positions:
            current = {p.symbol: position_from_alpaca(p).qty for p in positions}
            try:
                opened = self._fills.opening_times(current)
            except BrokerRejection:
                opened = {}
        return [position_from_alpaca(p, opened.get(p.symbol)) for p in positions]

    def position_opened_at(self, symbol_qtys: Mapping[str, Decimal]) -> dict[str, datetime]:
        """Opening time (aware UTC) per symbol of ``{symbol: signed qty}``; unresolved absent."""
        if self._fills is None:
            return {}
        return self._fills.opening_times(symbol_qtys)

    def latest_price(self, symbol: str) -> Decimal | None:
        """The last trade (IEX feed: free plans may read it), else the held position's
        current price; None when neither is known."""
        try:
            trades = self._call(
                lambda: self._data.get_stock_latest_trade(
                    StockLatestTradeRequest(symbol_or_symbols=symbol, feed=DataFeed.IEX)
                )
            )
            trade = _expect(trades, dict).get(symbol)
            if trade is not None:
                return dec(_expect(trade, Trade).price, field=f"{symbol} latest trade price")
        except BrokerRejection:
            pass  # no market-data permission: the position's price is the next best
        try:
            position = self._call(lambda: self._client.get_open_position(symbol))
        except AlpacaRejection as err:
            if is_not_found(err):
                return None
            raise
        return dec_or_none(_expect(position, Position).current_price, field="current_price")

    def get_open_orders(self) -> list[BrokerOrder]:
        found: dict[str, BrokerOrder] = {}
        until = None
        for _ in range(MAX_ORDER_PAGES):
            flt = GetOrdersRequest(
                status=QueryOrderStatus.OPEN, limit=ORDERS_PAGE, direction=Sort.DESC, until=until
            )
            raw = self._call(partial(self._client.get_orders, flt))
            page = [_expect(o, Order) for o in _expect(raw, list)]
            new = 0
            for order in page:
                if order.symbol is None or str(order.id) in found:
                    continue  # multi-leg orders have no symbol: not ours
                found[str(order.id)] = order_from_alpaca(order)
                new += 1
            if len(page) < ORDERS_PAGE or new == 0:
                break
            until = min(o.submitted_at for o in page) + timedelta(microseconds=1)
        return list(found.values())

    def get_order(self, order_id: str) -> BrokerOrder:
        self._check_order_id(order_id)
        order = self._call(lambda: self._client.get_order_by_id(order_id))
        return order_from_alpaca(_expect(order, Order))

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        try:
            order = self._call(lambda: self._client.get_order_by_client_id(client_order_id))
        except AlpacaRejection as err:
            if is_not_found(err):
                return None
            raise
        return order_from_alpaca(_expect(order, Order))

    # ------------------------------------------------------------------ writes

    def submit_order(self, request: OrderRequest) -> BrokerOrder:
        """Send an order once; after a transient failure look it up before re-sending."""
        alpaca_request = to_alpaca_request(request)
        attempt = 0
        while True:
            attempt += 1
            try:
                sent = self._retry.once(lambda: self._client.submit_order(alpaca_request))
                return order_from_alpaca(_expect(sent, Order))
            except BrokerRejection as err:
                if not is_duplicate_client_order_id(err):
                    raise
                existing = self.get_order_by_client_id(request.client_order_id)
                if existing is None:
                    raise
                return self._same_order(request, existing)
            except TransientBrokerError as err:
                if attempt >= self._retry.max_attempts:
                    raise
                self._retry.sleep(self.wait_seconds(attempt, err))
                existing = self.get_order_by_client_id(request.client_order_id)
                if existing is not None:
                    return self._same_order(request, existing)

    @staticmethod
    def _same_order(request: OrderRequest, existing: BrokerOrder) -> BrokerOrder:
        """The order found under our client_order_id, if it is the one we meant."""
        if (existing.symbol, existing.side, existing.qty) != (
            request.symbol,
            request.side,
            request.qty,
        ):
            raise AlpacaRejection(
                f"client_order_id {request.client_order_id} already names a different order "
                f"({existing.side.value} {existing.qty} {existing.symbol}, id {existing.id})",
                code=DUPLICATE_CLIENT_ORDER_ID,
                status=422,
            )
        return existing

    def cancel_order(self, order_id: str) -> None:
        """Ask Alpaca to cancel; an order already canceled (or being so) counts as done.

        Alpaca answers 204 with no body: only polling the order (see
        :meth:`cancel_and_confirm`) shows whether it is ``canceled``.
        """
        self._check_order_id(order_id)
        try:
            self._call(lambda: self._client.cancel_order_by_id(order_id))
        except AlpacaRejection as err:
            if err.status != 422:
                raise
            order = self.get_order(order_id)
            if order.status not in (OrderStatus.CANCELED, OrderStatus.PENDING_CANCEL):
                raise
        return None

    def cancel_and_confirm(
        self, order_id: str, *, polls: int = 20, interval: float = 0.5
    ) -> BrokerOrder:
        """Cancel, then poll until the order is final (canceled, or filled meanwhile).

        Returns the last state seen; still ``pending_cancel`` after ``polls``
        means not confirmed and the caller must not assume the shares are free.
        """
        self.cancel_order(order_id)
        order = self.get_order(order_id)
        for _ in range(polls):
            if order.status.is_final:
                break
            self._retry.sleep(interval)
            order = self.get_order(order_id)
        return order

    def market_is_open(self) -> bool:
        """Alpaca's own clock (``GET /v2/clock``), which knows holidays and early closes."""
        clock = self._call(self._client.get_clock)
        return bool(getattr(clock, "is_open", False))


__all__ = ["AlpacaBroker"]
