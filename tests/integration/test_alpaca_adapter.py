"""Contract tests: AlpacaBroker through the real alpaca-py client against the fake.

Every JSON body the fake sends is checked against Alpaca's OpenAPI
specification when each test's fake stops (``running_fake``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest

from rebalancerd.adapters.alpaca import AlpacaBroker, build_alpaca_broker
from rebalancerd.domain.model import OrderStatus, OrderType, Side
from rebalancerd.errors import BrokerRejection, TransientBrokerError
from rebalancerd.ports import OrderRequest
from tests.fake_alpaca import FakeAlpaca, running_fake

ORDERS = "/v2/orders"
BY_CLIENT = "/v2/orders:by_client_order_id"
ACTIVITIES = "/v2/account/activities/{activity_type}"
T0 = datetime(2024, 10, 1, 14, 0, tzinfo=UTC)


class Sleeps(list[float]):
    """Injected sleep: records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def fake() -> Iterator[FakeAlpaca]:
    with running_fake(slow_seconds=0.5) as server:
        yield server


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_broker(fake: FakeAlpaca, sleeps: Sleeps, **kwargs: Any) -> AlpacaBroker:
    kwargs.setdefault("timeout", 0.25)
    return AlpacaBroker(
        fake.api_key, fake.secret_key, base_url=fake.base_url + "/", sleep=sleeps, **kwargs
    )


@pytest.fixture
def broker(fake: FakeAlpaca, sleeps: Sleeps) -> AlpacaBroker:
    return make_broker(fake, sleeps)


def sell(symbol: str, qty: str, cid: str, **kwargs: Any) -> OrderRequest:
    return OrderRequest(symbol, D(qty), Side.SELL, cid, **kwargs)


def stop(symbol: str, qty: str, price: str, cid: str) -> OrderRequest:
    return OrderRequest(symbol, D(qty), Side.SELL, cid, OrderType.STOP, stop_price=D(price))


# --------------------------------------------------------------------------- reads


def test_account_in_exact_decimals(fake: FakeAlpaca, broker: AlpacaBroker) -> None:
    fake.state.cash = D("12345.67")
    fake.state.add_position("AAPL", D("10"), D("150.25"), D("170.11"))
    account = broker.get_account()
    assert account.cash == D("12345.67")
    assert account.equity == D("12345.67") + D("1701.1")
    assert account.buying_power == D("12345.67")
    assert all(isinstance(v, D) for v in (account.cash, account.equity, account.buying_power))


def test_positions_keep_exact_decimals(fake: FakeAlpaca, broker: AlpacaBroker) -> None:
    fake.state.add_position("AAPL", D("0.123456789"), D("0.1"), D("0.3"))
    fake.state.add_position("TSLA", D("-5"), D("200.07"), D("190.01"))
    by_symbol = {p.symbol: p for p in broker.get_positions()}
    aapl, tsla = by_symbol["AAPL"], by_symbol["TSLA"]
    assert (aapl.qty, aapl.avg_entry_price, aapl.current_price) == (
        D("0.123456789"),
        D("0.1"),
        D("0.3"),
    )
    assert str(aapl.avg_entry_price) == "0.1"  # no binary float digits
    assert aapl.qty_available == D("0.123456789")
    assert tsla.qty == D("-5")
    assert tsla.opened_at is None  # no fill history for it


def test_latest_price_from_the_market_data_api(fake: FakeAlpaca, broker: AlpacaBroker) -> None:
    fake.state.add_position("AAPL", D("10"), D("150"), D("171.35"))
    fake.state.set_price("MSFT", D("412.5"))
    assert broker.latest_price("AAPL") == D("171.35")
    assert broker.latest_price("MSFT") == D("412.5")  # not held: priced all the same
    assert fake.count("GET", "/v2/stocks/trades/latest") == 2


def test_latest_price_falls_back_to_the_position_without_data_access(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    fake.state.add_position("AAPL", D("10"), D("150"), D("171.35"))
    fake.state.data_forbidden = True  # 403 from the market-data API
    assert broker.latest_price("AAPL") == D("171.35")
    assert broker.latest_price("MSFT") is None


def test_open_orders_lists_resting_stops_only(fake: FakeAlpaca, broker: AlpacaBroker) -> None:
    fake.state.add_position("AAPL", D("10"), D("150"))
    resting = broker.submit_order(stop("AAPL", "6", "140.55", "stop-1"))
    broker.submit_order(sell("AAPL", "4", "exit-1"))  # fills at once
    orders = broker.get_open_orders()
    assert [o.id for o in orders] == [resting.id]
    only = orders[0]
    assert (only.type, only.side, only.status) == (OrderType.STOP, Side.SELL, OrderStatus.NEW)
    assert (only.qty, only.stop_price, only.time_in_force) == (D("6"), D("140.55"), "gtc")
    assert only.submitted_at is not None and only.submitted_at.tzinfo is not None


def test_open_orders_page_past_500(fake: FakeAlpaca, broker: AlpacaBroker) -> None:
    fake.state.add_position("AAPL", D("1000"), D("10"))
    for i in range(503):
        fake.state.place_order(
            {"symbol": "AAPL", "qty": "1", "side": "sell", "type": "stop", "stop_price": "5",
             "time_in_force": "gtc", "client_order_id": f"s{i}"}
        )  # fmt: skip
    orders = broker.get_open_orders()
    assert len(orders) == 503
    assert len({o.id for o in orders}) == 503
    assert fake.count("GET", ORDERS) == 2


# --------------------------------------------------------------------------- orders


def test_market_exit_fills(fake: FakeAlpaca, broker: AlpacaBroker) -> None:
    fake.state.add_position("AAPL", D("10"), D("150"))
    fake.state.set_price("AAPL", D("171.23"))
    order = broker.submit_order(sell("AAPL", "4", "exit-aapl-1"))
    assert (order.status, order.filled_qty, order.filled_avg_price) == (
        OrderStatus.FILLED,
        D("4"),
        D("171.23"),
    )
    assert (order.client_order_id, order.type, order.time_in_force) == (
        "exit-aapl-1",
        "market",
        "day",
    )
    assert [p.qty for p in broker.get_positions()] == [D("6")]
    assert fake.count("POST", ORDERS) == 1


def test_partial_fill_reported(fake: FakeAlpaca, broker: AlpacaBroker) -> None:
    fake.state.add_position("AAPL", D("10"), D("150"))
    fake.state.partial_fill = D("0.5")
    order = broker.submit_order(sell("AAPL", "10", "exit-aapl-2"))
    assert (order.status, order.filled_qty) == (OrderStatus.PARTIALLY_FILLED, D("5"))
    assert [o.id for o in broker.get_open_orders()] == [order.id]


def test_stop_holds_shares_and_exit_is_rejected_with_code(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    fake.state.add_position("AAPL", D("10"), D("150"))
    broker.submit_order(stop("AAPL", "10", "130", "stop-aapl"))
    [position] = broker.get_positions()
    assert (position.qty, position.qty_available) == (D("10"), D("0"))
    with pytest.raises(BrokerRejection) as info:
        broker.submit_order(sell("AAPL", "10", "exit-aapl"))
    assert info.value.code == "40310000"
    assert "insufficient qty available for order (requested: 10, available: 0)" in str(info.value)
    assert fake.count("POST", ORDERS) == 2  # a rejection is not retried
    assert fake.count("GET", BY_CLIENT) == 0


def test_cancel_confirmed_by_polling(fake: FakeAlpaca, broker: AlpacaBroker) -> None:
    fake.state.add_position("AAPL", D("10"), D("150"))
    fake.state.cancel_pending_polls = 2
    order = broker.submit_order(stop("AAPL", "10", "130", "stop-aapl"))
    assert broker.cancel_order(order.id) is None  # Alpaca answers 204, no body
    seen = [broker.get_order(order.id).status for _ in range(3)]
    assert seen == [OrderStatus.PENDING_CANCEL, OrderStatus.CANCELED, OrderStatus.CANCELED]
    assert broker.get_positions()[0].qty_available == D("10")
    broker.cancel_order(order.id)  # already canceled: done, not an error


def test_cancel_and_confirm(fake: FakeAlpaca, broker: AlpacaBroker, sleeps: Sleeps) -> None:
    fake.state.add_position("AAPL", D("10"), D("150"))
    fake.state.cancel_pending_polls = 3
    order = broker.submit_order(stop("AAPL", "10", "130", "stop-aapl"))
    final = broker.cancel_and_confirm(order.id, interval=0.01)
    assert final.status is OrderStatus.CANCELED
    assert sleeps == [0.01, 0.01]


def test_cancel_of_filled_order_is_rejected(fake: FakeAlpaca, broker: AlpacaBroker) -> None:
    fake.state.add_position("AAPL", D("10"), D("150"))
    order = broker.submit_order(sell("AAPL", "10", "exit-aapl"))
    with pytest.raises(BrokerRejection) as info:
        broker.cancel_order(order.id)
    assert info.value.code == "42210000"


def test_order_by_client_id(fake: FakeAlpaca, broker: AlpacaBroker) -> None:
    fake.state.add_position("AAPL", D("10"), D("150"))
    order = broker.submit_order(stop("AAPL", "10", "130", "stop-aapl"))
    assert broker.get_order_by_client_id("stop-aapl") == order
    assert broker.get_order_by_client_id("never-sent") is None


def test_unknown_order_is_a_rejection_not_retried(fake: FakeAlpaca, broker: AlpacaBroker) -> None:
    with pytest.raises(BrokerRejection) as info:
        broker.get_order("7d9e8f1a-1111-4222-8333-444455556666")
    assert info.value.code == "40410000"
    assert fake.total == 1
    with pytest.raises(BrokerRejection, match="not a UUID"):
        broker.get_order("not-a-uuid")
    assert fake.total == 1


def test_duplicate_client_order_id_returns_existing(fake: FakeAlpaca, broker: AlpacaBroker) -> None:
    fake.state.add_position("AAPL", D("10"), D("150"))
    first = broker.submit_order(stop("AAPL", "10", "130", "stop-aapl"))
    again = broker.submit_order(stop("AAPL", "10", "130", "stop-aapl"))
    assert again == first
    assert len(fake.state.orders) == 1
    assert (fake.count("POST", ORDERS), fake.count("GET", BY_CLIENT)) == (2, 1)
    with pytest.raises(BrokerRejection) as info:  # same id, different order: refuse
        broker.submit_order(stop("AAPL", "5", "130", "stop-aapl"))
    assert info.value.code == "40010001"


# --------------------------------------------------------------------------- faults


def test_timeout_enforced(fake: FakeAlpaca, sleeps: Sleeps) -> None:
    broker = make_broker(fake, sleeps, timeout=0.1, max_attempts=2)
    fake.slow_seconds = 3.0
    fake.inject("slow", path="/v2/account", times=2)
    started = time.monotonic()
    with pytest.raises(TransientBrokerError, match="timed out"):
        broker.get_account()
    assert time.monotonic() - started < 1.5  # two 0.1 s timeouts, not two 3 s answers
    assert fake.count("GET", "/v2/account") == 2


def test_429_retry_after_honoured(fake: FakeAlpaca, broker: AlpacaBroker, sleeps: Sleeps) -> None:
    fake.inject("429", path="/v2/account", retry_after="2")
    fake.inject("500", path="/v2/account", times=2)
    assert broker.get_account().cash == D("100000")
    assert sleeps == [2.0, 1.0, 2.0]  # Retry-After, then exponential 0.5 * 2**(n-1)
    assert fake.count("GET", "/v2/account") == 4


def test_gateway_page_is_transient_not_a_crash(fake: FakeAlpaca, sleeps: Sleeps) -> None:
    broker = make_broker(fake, sleeps, max_attempts=1)
    fake.inject("504", path="/v2/positions")
    with pytest.raises(TransientBrokerError, match="HTTP 504: <html>"):
        broker.get_positions()
    fake.inject("429", path="/v2/positions", retry_after=None)
    with pytest.raises(TransientBrokerError, match="rate limit exceeded"):
        broker.get_positions()


def test_alpaca_py_own_retry_is_off(fake: FakeAlpaca, sleeps: Sleeps) -> None:
    """alpaca-py alone would re-POST after 3 s on a 429/504; we look up instead."""
    broker = make_broker(fake, sleeps, max_attempts=1)
    fake.state.add_position("AAPL", D("10"), D("150"))
    fake.inject("429", method="POST", path=ORDERS)
    with pytest.raises(TransientBrokerError):
        broker.submit_order(sell("AAPL", "10", "exit-aapl"))
    assert fake.count("POST", ORDERS) == 1
    assert not fake.state.orders


@pytest.mark.parametrize("kind", ["504_after", "drop_after"])
def test_order_recorded_despite_failure_is_not_sent_twice(
    fake: FakeAlpaca, broker: AlpacaBroker, kind: str
) -> None:
    fake.state.add_position("AAPL", D("10"), D("150"))
    fake.inject(kind, method="POST", path=ORDERS)
    order = broker.submit_order(sell("AAPL", "10", "exit-aapl"))
    assert order.status is OrderStatus.FILLED
    assert len(fake.state.orders) == 1
    assert (fake.count("POST", ORDERS), fake.count("GET", BY_CLIENT)) == (1, 1)


@pytest.mark.parametrize("kind", ["429", "500", "504", "drop"])
def test_order_not_recorded_is_sent_again_after_lookup(
    fake: FakeAlpaca, broker: AlpacaBroker, kind: str
) -> None:
    fake.state.add_position("AAPL", D("10"), D("150"))
    fake.inject(kind, method="POST", path=ORDERS)
    order = broker.submit_order(sell("AAPL", "10", "exit-aapl"))
    assert order.status is OrderStatus.FILLED
    assert len(fake.state.orders) == 1
    assert (fake.count("POST", ORDERS), fake.count("GET", BY_CLIENT)) == (2, 1)


def test_slow_order_is_placed_once(fake: FakeAlpaca, sleeps: Sleeps) -> None:
    broker = make_broker(fake, sleeps, timeout=0.1)
    fake.state.add_position("AAPL", D("10"), D("150"))
    fake.inject("slow", method="POST", path=ORDERS)
    order = broker.submit_order(sell("AAPL", "10", "exit-aapl"))
    time.sleep(fake.slow_seconds + 0.2)  # the late original is answered 422 meanwhile
    assert [o.id for o in fake.state.orders.values()] == [order.id]


@pytest.mark.parametrize("pending_polls", [0, 2])
def test_cancel_applied_but_answer_lost_counts_as_done(
    fake: FakeAlpaca, broker: AlpacaBroker, pending_polls: int
) -> None:
    fake.state.add_position("AAPL", D("10"), D("150"))
    fake.state.cancel_pending_polls = pending_polls
    order = broker.submit_order(stop("AAPL", "10", "130", "stop-aapl"))
    fake.inject("504_after", method="DELETE", path="/v2/orders/{order_id}")
    broker.cancel_order(order.id)  # retried DELETE: 422 or 204, then confirmed
    assert fake.count("DELETE", "/v2/orders/{order_id}") == 2
    assert broker.cancel_and_confirm(order.id, interval=0).status is OrderStatus.CANCELED


def test_activity_walk_failure_fails_the_read(fake: FakeAlpaca, sleeps: Sleeps) -> None:
    """Better no answer than positions wrongly dated "first seen now"."""
    broker = make_broker(fake, sleeps, max_attempts=2)
    fake.state.trade("AAPL", "buy", D("10"), D("150"), T0)
    fake.inject("503", path=ACTIVITIES, times=2)
    with pytest.raises(TransientBrokerError):
        broker.get_positions()
    assert broker.get_positions()[0].opened_at == T0


# --------------------------------------------------------------------------- fill history


def test_opened_at_from_the_opening_fill(fake: FakeAlpaca, broker: AlpacaBroker) -> None:
    st = fake.state
    st.trade("AAPL", "buy", D("10"), D("150"), T0)
    st.trade("AAPL", "sell", D("4"), D("160"), T0 + timedelta(days=3))
    st.trade("AAPL", "buy", D("2"), D("155"), T0 + timedelta(days=5))
    [position] = broker.get_positions()
    assert position.qty == D("8")
    assert position.opened_at == T0


def test_closed_and_reopened_position_dates_from_reopening(
    fake: FakeAlpaca, broker: AlpacaBroker
) -> None:
    st = fake.state
    st.trade("AAPL", "buy", D("10"), D("150"), T0)
    st.trade("AAPL", "sell", D("10"), D("160"), T0 + timedelta(days=3))
    st.trade("AAPL", "buy", D("5"), D("155"), T0 + timedelta(days=7, hours=1))
    st.trade("AAPL", "buy", D("5"), D("156"), T0 + timedelta(days=8))
    [position] = broker.get_positions()
    assert position.opened_at == T0 + timedelta(days=7, hours=1)


def test_opened_at_found_across_pages(fake: FakeAlpaca, broker: AlpacaBroker) -> None:
    st = fake.state
    st.trade("AAPL", "buy", D("10"), D("150"), T0)
    for i in range(125):  # later round trips of another symbol: 250 fills
        at = T0 + timedelta(hours=1 + i)
        st.trade("XYZ", "buy", D("1"), D("9"), at)
        st.trade("XYZ", "sell", D("1"), D("9"), at + timedelta(minutes=1))
    [position] = broker.get_positions()
    assert position.opened_at == T0
    assert fake.count("GET", ACTIVITIES) == 3


def test_walk_is_bounded_and_unresolved_symbols_are_absent(
    fake: FakeAlpaca, sleeps: Sleeps
) -> None:
    broker = make_broker(fake, sleeps, activity_pages=2)
    st = fake.state
    st.trade("AAPL", "buy", D("10"), D("150"), T0)
    for i in range(150):
        at = T0 + timedelta(hours=1 + i)
        st.trade("XYZ", "buy", D("1"), D("9"), at)
        st.trade("XYZ", "sell", D("1"), D("9"), at + timedelta(minutes=1))
    st.trade("MSFT", "buy", D("3"), D("400"), T0 + timedelta(days=30))
    by_symbol = {p.symbol: p for p in broker.get_positions()}
    assert by_symbol["AAPL"].opened_at is None
    assert by_symbol["MSFT"].opened_at == T0 + timedelta(days=30)
    assert fake.count("GET", ACTIVITIES) == 2


# --------------------------------------------------------------------------- budget


def _review_requests(n: int) -> int:
    with running_fake() as fake:
        for i in range(n):
            symbol = f"S{i:03d}"
            fake.state.add_position(symbol, D("10"), D("50"), opened_at=T0 + timedelta(hours=i))
            fake.state.place_order(
                {"symbol": symbol, "qty": "10", "side": "sell", "type": "stop",
                 "stop_price": "40", "time_in_force": "gtc"}
            )  # fmt: skip
        broker = make_broker(fake, Sleeps())
        broker.get_account()
        positions = broker.get_positions()
        orders = broker.get_open_orders()
        assert len(positions) == len(orders) == n
        assert all(p.opened_at is not None for p in positions)
        assert all(p.qty_available == 0 for p in positions)
        return fake.total


def test_request_budget_is_constant() -> None:
    # account + positions + one activities page + open orders
    assert [_review_requests(n) for n in (1, 10, 100)] == [4, 4, 4]


# --------------------------------------------------------------------------- factory


def test_factory_reads_keys_from_named_variables(fake: FakeAlpaca) -> None:
    environ = {"DEE_KEY": fake.api_key, "DEE_SECRET": fake.secret_key}
    broker = build_alpaca_broker(
        "dee-bot", key_env="DEE_KEY", secret_env="DEE_SECRET", base_url=fake.base_url,
        environ=environ,
    )  # fmt: skip
    assert broker.get_account().cash == D("100000")
    wrong = build_alpaca_broker("dee-bot", base_url=fake.base_url, environ={
        "APCA_API_KEY_ID": "other", "APCA_API_SECRET_KEY": "x"})  # fmt: skip
    with pytest.raises(BrokerRejection) as info:
        wrong.get_account()
    assert info.value.code == "40110000"
