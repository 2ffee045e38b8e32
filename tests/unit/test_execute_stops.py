"""Where a protective stop goes, and the ids orders carry (no broker, no database)."""

from __future__ import annotations

from decimal import Decimal as D

from rebalancerd.domain.model import OrderStatus, OrderType, Side
from rebalancerd.ports import BrokerOrder
from rebalancerd.services.orders import client_order_id, protective_stop_price


def stop(price: str, side: Side = Side.SELL) -> BrokerOrder:
    return BrokerOrder("id", "cid", "AMD", side, OrderType.STOP, D(10), OrderStatus.NEW,
                       stop_price=D(price))  # fmt: skip


def test_the_cancelled_stop_price_is_put_back_the_tightest_one_first() -> None:
    assert protective_stop_price([stop("85"), stop("90")], Side.SELL, D(100), D(15)) == D(90)
    shorts = [stop("110", Side.BUY), stop("120", Side.BUY)]
    assert protective_stop_price(shorts, Side.BUY, D(100), None) == D(110)


def test_without_a_cancelled_stop_the_account_stop_loss_applies() -> None:
    assert protective_stop_price([], Side.SELL, D("123.45"), D(15)) == D("104.93")
    assert protective_stop_price([], Side.BUY, D(100), D(15)) == D("115.00")  # a short
    assert protective_stop_price([], Side.SELL, D(100), None) is None


def test_client_order_ids_are_deterministic_and_fit_alpaca() -> None:
    uid = "8fe3b1b588264937b200476856254590"
    assert client_order_id(uid) == f"rbd-{uid}-x1" == client_order_id(uid)
    assert client_order_id(uid, "s", 2) == f"rbd-{uid}-s2"
    assert len(client_order_id(uid, "s", 99)) <= 48  # Alpaca's limit
