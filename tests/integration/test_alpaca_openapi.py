"""The fake speaks Alpaca's OpenAPI shapes; each relaxation of the spec is still needed.

For every relaxation: the strict specification rejects the body Alpaca sends,
alpaca-py accepts it, the relaxed one accepts it, and the relaxation is no
wider than that difference.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal as D
from typing import Any

import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.models import ClosePositionResponse, Order, TradeActivity
from pydantic import TypeAdapter

from tests.fake_alpaca import FakeAlpaca, FakeAlpacaState, assert_conforms, running_fake
from tests.fake_alpaca.openapi_check import (
    RELAXATIONS,
    ResponseValidator,
    load_spec,
)
from tests.fake_alpaca.server import JsonResponse

ACTIVITIES = "/v2/account/activities/{activity_type}"


def without(name: str) -> ResponseValidator:
    """The validator with every relaxation but ``name``."""
    return ResponseValidator([n for n in RELAXATIONS if n != name])


@pytest.fixture(scope="module")
def relaxed() -> ResponseValidator:
    return ResponseValidator()


@pytest.fixture
def fake() -> Iterator[FakeAlpaca]:
    with running_fake() as server:
        yield server


@pytest.fixture
def client(fake: FakeAlpaca) -> TradingClient:
    return TradingClient(fake.api_key, fake.secret_key, url_override=fake.base_url)


def _order_body() -> dict[str, Any]:
    state = FakeAlpacaState()
    state.add_position("AAPL", D("10"), D("150"))
    order = state.place_order(
        {"symbol": "AAPL", "qty": "10", "side": "sell", "type": "stop", "stop_price": "130",
         "time_in_force": "gtc", "client_order_id": "stop-1"}
    )  # fmt: skip
    return order.to_json()


def test_order_trailing_fields_null_needs_relaxation(relaxed: ResponseValidator) -> None:
    body = _order_body()
    assert body["trail_percent"] is None and body["trail_price"] is None and body["hwm"] is None
    Order(**body)  # alpaca-py accepts Alpaca's nulls
    strict = without("order_trailing_nullable").errors("GET", "/v2/orders/{order_id}", 200, body)
    assert strict and "None for not nullable" in " ".join(strict)
    assert relaxed.errors("GET", "/v2/orders/{order_id}", 200, body) == []
    # exactly nullability: a wrong type is still refused
    assert relaxed.errors("GET", "/v2/orders/{order_id}", 200, {**body, "hwm": 5})


def test_fill_activity_matches_both_one_of_branches(relaxed: ResponseValidator) -> None:
    state = FakeAlpacaState()
    state.add_position("AAPL", D("10"), D("150"), opened_at=None)
    state.trade("AAPL", "buy", D("2"), D("174.78"), state.now())
    page = state.fills_page()
    TradeActivity(**page[0])  # alpaca-py's model for a FILL accepts it
    strict = without("fill_activity_any_of").errors("GET", ACTIVITIES, 200, page)
    assert strict and "is valid under each of" in strict[0]
    assert relaxed.errors("GET", ACTIVITIES, 200, page) == []
    assert relaxed.errors("GET", ACTIVITIES, 200, [{**page[0], "qty": 2}])  # still typed


def test_close_all_status_number_needs_relaxation(
    relaxed: ResponseValidator, fake: FakeAlpaca, client: TradingClient
) -> None:
    fake.state.add_position("AAPL", D("10"), D("150"))
    answers = client.close_all_positions()  # alpaca-py parses Alpaca's numeric status
    assert [(a.symbol, a.status) for a in answers] == [("AAPL", 200)]
    [sent] = [r for r in fake.responses if r.template == "/v2/positions"]
    assert sent.status == 207 and sent.body[0]["status"] == 200
    strict = without("close_all_status_number").errors("DELETE", "/v2/positions", 207, sent.body)
    assert strict and "is not of type 'string'" in strict[0]
    assert relaxed.errors("DELETE", "/v2/positions", 207, sent.body) == []
    bad = [{**sent.body[0], "status": True}]
    assert relaxed.errors("DELETE", "/v2/positions", 207, bad)
    TypeAdapter(list[ClosePositionResponse]).validate_python(sent.body)


def test_paths_alpaca_py_uses_are_not_in_the_spec(fake: FakeAlpaca, client: TradingClient) -> None:
    paths = load_spec()["paths"]
    assert "/v2/orders:by_client_order_id" not in paths
    assert not any(p.startswith("/v2/assets") for p in paths)
    fake.state.add_position("AAPL", D("10"), D("150"))
    fake.state.place_order(
        {"symbol": "AAPL", "qty": "1", "side": "sell", "type": "market",
         "time_in_force": "day", "client_order_id": "exit-1"}
    )  # fmt: skip
    order = client.get_order_by_client_id("exit-1")
    assert isinstance(order, Order) and order.client_order_id == "exit-1"
    asset = client.get_asset("AAPL")
    assert asset.symbol == "AAPL"
    # both checked at teardown: against the Order and Assets components
    assert {r.template for r in fake.responses} == {
        "/v2/orders:by_client_order_id",
        "/v2/assets/{symbol_or_asset_id}",
    }


def test_unrelaxed_spec_is_still_enforced(relaxed: ResponseValidator) -> None:
    state = FakeAlpacaState()
    state.add_position("AAPL", D("10"), D("150"))
    [position] = state.positions_json()
    assert relaxed.errors("GET", "/v2/positions", 200, [position]) == []
    del position["asset_marginable"]  # the spec requires all 17 fields
    assert relaxed.errors("GET", "/v2/positions", 200, [position])
    account = state.account_json()
    assert relaxed.errors("GET", "/v2/account", 200, {**account, "status": "BOGUS"})
    assert relaxed.errors("GET", "/v2/orders", 200, [{**_order_body(), "created_at": "x"}])


def test_teardown_check_catches_a_bad_body() -> None:
    fake = FakeAlpaca()
    fake.responses.append(JsonResponse("GET", "/v2/clock", 200, {"is_open": "yes"}))
    with pytest.raises(AssertionError, match="non-conforming"):
        assert_conforms(fake)
    fake.responses.clear()
    fake.responses.append(JsonResponse("POST", "/v2/orders", 403, {"message": "no code"}))
    with pytest.raises(AssertionError, match="code"):
        assert_conforms(fake)


def test_market_data_bodies_are_checked_against_the_data_specification(
    relaxed: ResponseValidator,
) -> None:
    """The latest-trade body (which sizes entries) meets Alpaca's Market Data spec."""
    body = FakeAlpacaState().latest_trade_json("AAPL")
    path = "/v2/stocks/trades/latest"
    assert relaxed.errors("GET", path, 200, {"trades": {"AAPL": body}}) == []
    wrong = {"trades": {"AAPL": {**body, "p": "200"}}}  # a string price: not Alpaca's shape
    assert relaxed.errors("GET", path, 200, wrong)[0].endswith("'200' is not of type 'number'")
