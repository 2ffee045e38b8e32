"""Pure conversions of the Alpaca adapter: numbers, enums, requests, errors, fill walk."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.trading import enums as ae
from alpaca.trading.models import Order, Position, TradeAccount
from alpaca.trading.requests import MarketOrderRequest, StopOrderRequest
from hypothesis import given
from hypothesis import strategies as st

from rebalancerd.adapters.alpaca.activities import Fill, fill_from_json, opening_times
from rebalancerd.adapters.alpaca.convert import (
    STATUS_MAP,
    TYPE_MAP,
    account_from_alpaca,
    dec,
    dec_or_none,
    order_from_alpaca,
    parse_timestamp,
    position_from_alpaca,
    to_alpaca_request,
)
from rebalancerd.adapters.alpaca.errors import (
    AlpacaRejection,
    AlpacaTransientError,
    is_duplicate_client_order_id,
    parse_retry_after,
    translate,
)
from rebalancerd.domain.model import OrderStatus, OrderType, Side
from rebalancerd.errors import BrokerError, BrokerRejection, TransientBrokerError
from rebalancerd.ports import OrderRequest

OID = "61e69015-8549-4bfd-b9c3-01e75843f47d"


def order_json(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": OID, "client_order_id": "exit-1", "created_at": "2024-11-04T14:30:00.123456Z",
        "updated_at": "2024-11-04T14:30:00.123456Z",
        "submitted_at": "2024-11-04T14:30:00.12345678Z",
        "symbol": "AAPL", "asset_class": "us_equity", "qty": "10", "filled_qty": "0",
        "filled_avg_price": None, "order_class": "", "type": "market", "side": "sell",
        "time_in_force": "day", "stop_price": None, "status": "accepted", "extended_hours": False,
        "trail_percent": None, "trail_price": None, "hwm": None,
    }  # fmt: skip
    body.update(overrides)
    return body


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0.1", "0.1"), (0.1, "0.1"), (1.1 + 2.2, "3.3000000000000003"), (10, "10"),
     ("  171.23 ", "171.23"), ("1E+2", "1E+2"), (D("5.50"), "5.50")],
)  # fmt: skip
def test_dec_goes_through_str(raw: Any, expected: str) -> None:
    assert dec(raw) == D(expected)
    assert str(dec(raw)) == expected


@pytest.mark.parametrize("raw", [None, True, "abc", "NaN", "Infinity", ""])
def test_dec_refuses_garbage(raw: Any) -> None:
    with pytest.raises(BrokerError):
        dec(raw, field="price")


def test_dec_or_none() -> None:
    assert dec_or_none(None) is None
    assert dec_or_none("") is None
    assert dec_or_none("1.5") == D("1.5")


@pytest.mark.parametrize(
    "text",
    ["2024-11-04T14:30:00.12345678Z", "2024-11-04T14:30:00.123456789Z",
     "2024-11-04T09:30:00.123456-05:00", "2024-11-04T14:30:00.123456+00:00"],
)  # fmt: skip
def test_parse_timestamp_nanoseconds_and_offsets(text: str) -> None:
    assert parse_timestamp(text) == datetime(2024, 11, 4, 14, 30, 0, 123456, tzinfo=UTC)


def test_parse_timestamp_whole_seconds() -> None:
    assert parse_timestamp("2024-11-04T14:30:00Z") == datetime(2024, 11, 4, 14, 30, tzinfo=UTC)


# --------------------------------------------------------------------------- models


def test_every_alpaca_status_and_type_is_mapped() -> None:
    assert {s.value for s in ae.OrderStatus} <= set(STATUS_MAP)
    assert {t.value for t in ae.OrderType} <= set(TYPE_MAP)
    assert {s.value for s in OrderStatus} <= set(STATUS_MAP)  # ours map to themselves
    assert all(STATUS_MAP[s.value] is s for s in OrderStatus)


def test_order_from_alpaca_floats_and_strings() -> None:
    order = order_from_alpaca(
        Order(**order_json(qty=0.1, filled_qty="0.1", filled_avg_price=171.1, status="filled"))
    )
    assert (order.qty, order.filled_qty, order.filled_avg_price) == (
        D("0.1"),
        D("0.1"),
        D("171.1"),
    )
    assert order.status is OrderStatus.FILLED
    assert order.submitted_at == datetime(2024, 11, 4, 14, 30, 0, 123456, tzinfo=UTC)
    assert (order.id, order.side, order.type) == (OID, Side.SELL, OrderType.MARKET)


def test_order_from_alpaca_stop_and_exotic_status() -> None:
    body = order_json(type="trailing_stop", stop_price="140.55", status="pending_replace")
    order = order_from_alpaca(Order(**body))
    assert (order.type, order.stop_price, order.status) == (
        OrderType.STOP,
        D("140.55"),
        OrderStatus.NEW,
    )
    assert order_from_alpaca(Order(**order_json(status="replaced"))).status.is_final


def test_order_without_symbol_is_refused() -> None:
    with pytest.raises(BrokerError, match="no symbol"):
        order_from_alpaca(Order(**order_json(symbol="", side="")))


def position(**overrides: Any) -> Position:
    body: dict[str, Any] = {
        "asset_id": "904837e3-3b76-47ec-b432-046db621571b", "symbol": "AAPL",
        "exchange": "NASDAQ", "asset_class": "us_equity", "avg_entry_price": "100.1",
        "qty": "5", "qty_available": "4", "side": "long", "cost_basis": "500.5",
        "current_price": "120.3",
    }  # fmt: skip
    body.update(overrides)
    return Position(**body)


def test_position_conversion() -> None:
    opened = datetime(2024, 10, 1, 10, 0, tzinfo=UTC)
    pos = position_from_alpaca(position(), opened)
    assert (pos.qty, pos.qty_available, pos.avg_entry_price, pos.current_price) == (
        D("5"),
        D("4"),
        D("100.1"),
        D("120.3"),
    )
    assert pos.opened_at == opened
    short = position_from_alpaca(position(qty="5", side="short", qty_available=None))
    assert (short.qty, short.qty_available) == (D("-5"), D("-5"))
    assert position_from_alpaca(position(current_price=None)).current_price is None


def test_account_conversion() -> None:
    account = TradeAccount(
        id="e6fe16f3-64a4-4921-8928-cadf02f92f98", account_number="PA1", status="ACTIVE",
        cash="-23140.2", equity=None, portfolio_value="103820.56", buying_power="262113.632",
    )  # fmt: skip
    snap = account_from_alpaca(account)
    assert (snap.cash, snap.equity, snap.buying_power) == (
        D("-23140.2"),
        D("103820.56"),
        D("262113.632"),
    )


# --------------------------------------------------------------------------- requests


def test_exit_is_a_market_order_with_client_id() -> None:
    req = to_alpaca_request(OrderRequest("AAPL", D("12.5"), Side.SELL, "exit-1"))
    assert isinstance(req, MarketOrderRequest)
    fields = req.to_request_fields()
    assert fields == {
        "symbol": "AAPL", "qty": 12.5, "side": "sell", "type": "market",
        "time_in_force": "day", "client_order_id": "exit-1",
    }  # fmt: skip


def test_stop_is_gtc() -> None:
    req = to_alpaca_request(
        OrderRequest("AAPL", D("10"), Side.SELL, "stop-1", OrderType.STOP, stop_price=D("85.1"))
    )
    assert isinstance(req, StopOrderRequest)
    assert (req.time_in_force, req.stop_price) == (ae.TimeInForce.GTC, 85.1)


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (OrderRequest("A", D("1"), Side.SELL, "c", OrderType.LIMIT), "unsupported_order_type"),
        (OrderRequest("A", D("1"), Side.SELL, "c", OrderType.STOP), "invalid_stop"),
        (OrderRequest("A", D("0"), Side.SELL, "c"), "invalid_qty"),
        (OrderRequest("A", D("0.12345678901234567"), Side.SELL, "c"), "not_representable"),
        (OrderRequest("A", D("1"), Side.SELL, "c", time_in_force="week"), "invalid_time_in_force"),
    ],
)
def test_unsendable_requests_are_rejections(request_: OrderRequest, code: str) -> None:
    with pytest.raises(BrokerRejection) as info:
        to_alpaca_request(request_)
    assert info.value.code == code


# --------------------------------------------------------------------------- errors


def api_error(status: int, body: str, headers: dict[str, str] | None = None) -> APIError:
    response = requests.Response()
    response.status_code = status
    response._content = body.encode()
    response.headers.update(headers or {})
    http_error = requests.HTTPError(f"{status}", response=response)
    return APIError(body, http_error)


def test_rejection_carries_alpaca_code() -> None:
    body = json.dumps({"code": 40310000, "message": "insufficient qty available for order"})
    err = translate(api_error(403, body))
    assert isinstance(err, AlpacaRejection) and isinstance(err, BrokerRejection)
    assert (err.code, err.status, str(err)) == (
        "40310000",
        403,
        "insufficient qty available for order",
    )


def test_non_json_bodies_do_not_break_translation() -> None:
    raw = api_error(504, "<html><h1>504 Gateway Time-out</h1></html>")
    with pytest.raises(json.JSONDecodeError):
        _ = raw.code  # alpaca-py's own property blows up
    err = translate(raw)
    assert isinstance(err, TransientBrokerError) and "504 Gateway Time-out" in str(err)
    plain = translate(api_error(404, "Not Found"))
    assert isinstance(plain, BrokerRejection) and plain.code == "404"
    assert str(translate(api_error(400, ""))) == "HTTP 400"
    assert translate(api_error(400, "[1, 2]")).code == "400"  # type: ignore[attr-defined]


def test_transient_statuses_and_retry_after() -> None:
    err = translate(api_error(429, "rate limit exceeded", {"Retry-After": "3"}))
    assert isinstance(err, AlpacaTransientError) and err.retry_after == 3.0
    for status in (408, 500, 502, 503):
        assert isinstance(translate(api_error(status, "{}")), TransientBrokerError)


def test_request_exceptions() -> None:
    assert isinstance(translate(requests.ReadTimeout("slow")), TransientBrokerError)
    assert isinstance(translate(requests.ConnectTimeout("slow")), TransientBrokerError)
    assert isinstance(translate(requests.ConnectionError("reset")), TransientBrokerError)
    assert isinstance(translate(requests.exceptions.ChunkedEncodingError()), TransientBrokerError)
    bad_url = translate(requests.exceptions.InvalidURL("x"))
    assert type(bad_url) is BrokerError


def test_parse_retry_after() -> None:
    now = datetime(2024, 11, 4, 14, 30, tzinfo=UTC)
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("Mon, 04 Nov 2024 14:30:05 GMT", now=now) == 5.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_duplicate_detection() -> None:
    body = json.dumps({"code": 40010001, "message": "client_order_id must be unique"})
    assert is_duplicate_client_order_id(translate(api_error(422, body)))
    assert is_duplicate_client_order_id(BrokerRejection("client_order_id must be unique"))
    assert not is_duplicate_client_order_id(TransientBrokerError("x"))


# --------------------------------------------------------------------------- fill walk

T0 = datetime(2024, 10, 1, 14, 0, tzinfo=UTC)


def fill(symbol: str, side: str, qty: str, hours: int) -> Fill:
    return Fill(f"id{hours}", symbol, side, D(qty), T0 + timedelta(hours=hours))


def test_opening_times_walk() -> None:
    newest_first = [
        fill("AAPL", "buy", "5", 9),
        fill("MSFT", "sell", "1", 8),
        fill("AAPL", "buy", "5", 7),  # reopened here
        fill("AAPL", "sell", "10", 5),
        fill("AAPL", "buy", "10", 1),
        fill("MSFT", "buy", "3", 0),  # opened here
        fill("TSLA", "buy", "3", 0),  # not held
    ]
    current = {"AAPL": D("10"), "MSFT": D("2"), "NVDA": D("4")}
    assert opening_times(current, newest_first) == {
        "AAPL": T0 + timedelta(hours=7),
        "MSFT": T0,
    }


def test_short_and_flip() -> None:
    fills = [fill("X", "sell_short", "5", 3), fill("Y", "sell", "8", 2), fill("Y", "buy", "5", 1)]
    assert opening_times({"X": D("-5"), "Y": D("-3")}, fills) == {
        "X": T0 + timedelta(hours=3),
        "Y": T0 + timedelta(hours=2),  # went from +5 to -3 in one fill
    }


def test_unreadable_fill_gives_the_symbol_up() -> None:
    broken = fill_from_json({"id": "1", "symbol": "AAPL", "side": "buy", "qty": "x"})
    assert broken is not None and broken.qty is None
    fills = [broken, fill("AAPL", "buy", "10", 0)]
    assert opening_times({"AAPL": D("10")}, fills) == {}
    assert fill_from_json({"activity_type": "DIV"}) is None


def test_walk_stops_reading_once_resolved() -> None:
    consumed = []

    def fills() -> Any:
        for f in [fill("AAPL", "buy", "10", 2), fill("AAPL", "buy", "1", 1)]:
            consumed.append(f)
            yield f

    assert opening_times({"AAPL": D("10")}, fills()) == {"AAPL": T0 + timedelta(hours=2)}
    assert len(consumed) == 1


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 5)), min_size=1, max_size=40))
def test_opening_is_the_last_time_qty_left_zero(steps: list[tuple[bool, int]]) -> None:
    """Replay random long-only trading; the walk finds the last move away from zero."""
    qty, history, opened_at = D(0), [], None
    for hour, (buy, n) in enumerate(steps):
        amount = D(n) if buy or qty == 0 else min(D(n), qty)
        side = "buy" if buy or qty == 0 else "sell"
        if qty == 0:
            opened_at = T0 + timedelta(hours=hour)
        qty += amount if side == "buy" else -amount
        history.append(fill("S", side, str(amount), hour))
    result = opening_times({"S": qty}, list(reversed(history)))
    assert result == ({"S": opened_at} if qty else {})
