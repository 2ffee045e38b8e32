"""The simulated broker: seeding, persistence, fills, holds and Alpaca's rejections."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest

from rebalancerd.adapters.sim_broker import SimBroker
from rebalancerd.config.portfolio_file import SimPortfolioSpec
from rebalancerd.domain.model import OrderStatus, OrderType, Side
from rebalancerd.errors import BrokerRejection
from rebalancerd.ports import Broker, OrderRequest
from tests.fakes import FakeClock, InMemorySimStateStore

NOW = datetime(2026, 11, 30, 14, 30, tzinfo=UTC)

SPEC_DATA: dict[str, Any] = {
    "cash": "25000.00",
    "positions": [
        {
            "symbol": "AMD",
            "qty": "120",
            "avg_entry_price": "100.00",
            "current_price": "131.00",
            "opened_at": "2026-10-26",
            "catalyst": "Earnings",
            "catalyst_date": "2026-11-04",
        },
        {"symbol": "nvda", "qty": "2.5", "avg_entry_price": "400", "current_price": "500"},
        {"symbol": "TSLA", "qty": "-10", "avg_entry_price": "250", "current_price": "200"},
    ],
    "open_orders": [
        {"symbol": "AMD", "side": "sell", "type": "stop", "qty": "120", "stop_price": "85.00"},
        {
            "symbol": "TSLA",
            "side": "buy",
            "type": "stop",
            "qty": "4",
            "stop_price": "300",
            "client_order_id": "tsla-stop",
        },
    ],
    "prices": {"AAPL": "200.00"},
}


def make_spec(**changes: Any) -> SimPortfolioSpec:
    return SimPortfolioSpec.model_validate({**SPEC_DATA, **changes})


@pytest.fixture
def store() -> InMemorySimStateStore:
    return InMemorySimStateStore()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def broker(store: InMemorySimStateStore, clock: FakeClock) -> SimBroker:
    return SimBroker("dee-bot", make_spec(), store, clock, spec_fingerprint="v1")


def req(
    symbol: str,
    qty: str,
    side: Side,
    *,
    type: OrderType = OrderType.MARKET,
    stop: str | None = None,
    cid: str | None = None,
) -> OrderRequest:
    return OrderRequest(
        symbol=symbol,
        qty=D(qty),
        side=side,
        client_order_id=cid or f"test-{uuid.uuid4()}",
        type=type,
        time_in_force="gtc" if type is not OrderType.MARKET else "day",
        stop_price=D(stop) if stop else None,
    )


def positions(broker: SimBroker) -> dict[str, Any]:
    return {p.symbol: p for p in broker.get_positions()}


def cancel_open(broker: SimBroker, symbol: str) -> None:
    for order in broker.get_open_orders():
        if order.symbol == symbol:
            broker.cancel_order(order.id)


# ---------------------------------------------------------------- seeding


def test_is_a_broker(broker: SimBroker) -> None:
    typed: Broker = broker
    assert typed.get_account().cash == D("25000.00")


def test_seeds_from_spec(broker: SimBroker, store: InMemorySimStateStore) -> None:
    assert store.load_sim_state("dee-bot") is None  # nothing until first use
    account = broker.get_account()
    # 120×131 + 2.5×500 − 10×200
    assert account.cash == D("25000.00")
    assert account.equity == D("25000.00") + D("15720") + D("1250") - D("2000")
    assert account.buying_power == account.cash

    pos = positions(broker)
    assert set(pos) == {"AMD", "NVDA", "TSLA"}
    amd = pos["AMD"]
    assert (amd.qty, amd.avg_entry_price, amd.current_price) == (D("120"), D("100"), D("131"))
    # 2026-10-26 00:00 New York (EDT, UTC−4) is 04:00 UTC
    assert amd.opened_at == datetime(2026, 10, 26, 4, 0, tzinfo=UTC)
    assert (amd.catalyst, amd.catalyst_date) == ("Earnings", date(2026, 11, 4))
    assert amd.qty_available == 0  # the seeded stop holds all 120
    assert pos["NVDA"].opened_at is None
    assert pos["TSLA"].qty == D("-10")
    assert pos["TSLA"].qty_available == D("6")  # the buy stop holds 4 of the short 10

    orders = broker.get_open_orders()
    assert len(orders) == 2
    assert all(o.status is OrderStatus.NEW for o in orders)
    assert all(str(uuid.UUID(o.id)) == o.id for o in orders)
    amd_stop = next(o for o in orders if o.symbol == "AMD")
    assert amd_stop.client_order_id  # generated
    assert amd_stop.stop_price == D("85.00") and amd_stop.time_in_force == "gtc"
    assert broker.get_order_by_client_id("tsla-stop") is not None


def test_state_is_json_with_strings_for_decimals(
    broker: SimBroker, store: InMemorySimStateStore
) -> None:
    broker.get_account()
    state = store.load_sim_state("dee-bot")
    assert state is not None
    assert state["cash"] == "25000.00"
    assert state["positions"]["AMD"]["opened_at"] == "2026-10-26T04:00:00+00:00"
    assert state["prices"]["AAPL"] == "200.00"
    assert state["spec_fingerprint"] == "v1"


def test_winter_date_opened_at_uses_est() -> None:
    spec = make_spec(
        positions=[{"symbol": "X", "qty": "1", "avg_entry_price": "1", "opened_at": "2026-01-05"}],
        open_orders=[],
    )
    b = SimBroker("a", spec, InMemorySimStateStore(), FakeClock(NOW))
    assert b.get_positions()[0].opened_at == datetime(2026, 1, 5, 5, 0, tzinfo=UTC)


def test_restart_keeps_state(
    broker: SimBroker, store: InMemorySimStateStore, clock: FakeClock
) -> None:
    cancel_open(broker, "AMD")
    broker.submit_order(req("AMD", "20", Side.SELL, cid="trim-1"))
    again = SimBroker("dee-bot", make_spec(), store, clock, spec_fingerprint="v1")
    assert positions(again)["AMD"].qty == D("100")
    assert again.get_account().cash == D("25000.00") + 20 * D("131")
    assert again.get_order_by_client_id("trim-1") is not None
    assert [o.symbol for o in again.get_open_orders()] == ["TSLA"]


def test_accounts_are_separate(store: InMemorySimStateStore, clock: FakeClock) -> None:
    a = SimBroker("a", make_spec(), store, clock)
    b = SimBroker("b", make_spec(cash="10"), store, clock)
    assert (a.get_account().cash, b.get_account().cash) == (D("25000.00"), D("10"))


def test_new_fingerprint_refreshes_prices_only(
    broker: SimBroker, store: InMemorySimStateStore, clock: FakeClock
) -> None:
    cancel_open(broker, "AMD")
    broker.submit_order(req("AMD", "20", Side.SELL))
    broker.set_price("MSFT", D("400"))
    cash = broker.get_account().cash

    new_positions = [dict(p) for p in SPEC_DATA["positions"]]
    new_positions[0] = {**new_positions[0], "qty": "999", "current_price": "140.00"}
    new_spec = make_spec(cash="1", positions=new_positions, prices={"AAPL": "210"})
    refreshed = SimBroker("dee-bot", new_spec, store, clock, spec_fingerprint="v2")

    pos = positions(refreshed)
    assert pos["AMD"].qty == D("100")  # holdings are the simulator's own
    assert pos["AMD"].current_price == D("140.00")  # prices come from the new file
    assert refreshed.get_account().cash == cash
    state = store.load_sim_state("dee-bot")
    assert state is not None
    assert state["prices"]["AAPL"] == "210"
    assert state["prices"]["MSFT"] == "400"  # not in the file: kept
    assert state["spec_fingerprint"] == "v2"

    # the same fingerprint again does not overwrite later price changes
    refreshed.set_price("AMD", D("150"))
    again = SimBroker("dee-bot", new_spec, store, clock, spec_fingerprint="v2")
    assert positions(again)["AMD"].current_price == D("150")


# ---------------------------------------------------------------- fills


def test_market_sell_of_held_shares_is_rejected_with_40310000(broker: SimBroker) -> None:
    with pytest.raises(BrokerRejection) as exc:
        broker.submit_order(req("AMD", "10", Side.SELL))
    assert exc.value.code == "40310000"
    assert str(exc.value) == "insufficient qty available for order (requested: 10, available: 0)"


def test_cancel_then_sell_succeeds(broker: SimBroker, clock: FakeClock) -> None:
    stop = next(o for o in broker.get_open_orders() if o.symbol == "AMD")
    broker.cancel_order(stop.id)
    assert broker.get_order(stop.id).status is OrderStatus.CANCELED
    assert positions(broker)["AMD"].qty_available == D("120")

    clock.advance(timedelta(minutes=1))
    order = broker.submit_order(req("AMD", "120", Side.SELL, cid="exit-amd"))
    assert order.status is OrderStatus.FILLED
    assert (order.filled_qty, order.filled_avg_price) == (D("120"), D("131.00"))
    assert order.submitted_at == NOW + timedelta(minutes=1)
    assert "AMD" not in positions(broker)  # closed
    assert broker.get_account().cash == D("25000.00") + D("15720")
    assert broker.get_order(order.id) == order


def test_partial_trim_keeps_entry_and_opened_at(broker: SimBroker) -> None:
    cancel_open(broker, "AMD")
    before = broker.get_account()
    broker.submit_order(req("AMD", "60", Side.SELL))
    amd = positions(broker)["AMD"]
    assert (amd.qty, amd.qty_available, amd.avg_entry_price) == (D("60"), D("60"), D("100"))
    assert amd.opened_at == datetime(2026, 10, 26, 4, 0, tzinfo=UTC)
    after = broker.get_account()
    assert after.cash == before.cash + 60 * D("131")
    assert after.equity == before.equity


def test_stop_holds_part_of_a_position(broker: SimBroker) -> None:
    cancel_open(broker, "AMD")
    stop = broker.submit_order(req("AMD", "100", Side.SELL, type=OrderType.STOP, stop="90"))
    assert stop.status is OrderStatus.NEW and stop.filled_qty == 0
    assert positions(broker)["AMD"].qty_available == D("20")
    broker.submit_order(req("AMD", "20", Side.SELL))
    with pytest.raises(BrokerRejection) as exc:
        broker.submit_order(req("AMD", "1", Side.SELL))
    assert exc.value.code == "40310000"
    # a second stop over the remaining shares is refused the same way
    with pytest.raises(BrokerRejection):
        broker.submit_order(req("AMD", "101", Side.SELL, type=OrderType.STOP, stop="80"))
    assert positions(broker)["AMD"].qty == D("100")


def test_fractional_position_sells_whole_shares_keeps_remainder(broker: SimBroker) -> None:
    broker.submit_order(req("NVDA", "2", Side.SELL))
    nvda = positions(broker)["NVDA"]
    assert (nvda.qty, nvda.qty_available) == (D("0.5"), D("0.5"))
    with pytest.raises(BrokerRejection) as exc:
        broker.submit_order(req("NVDA", "1", Side.SELL))
    assert "(requested: 1, available: 0.5)" in str(exc.value)
    broker.submit_order(req("NVDA", "0.5", Side.SELL))
    assert "NVDA" not in positions(broker)


def test_buy_new_position_and_add_reaverages(broker: SimBroker, clock: FakeClock) -> None:
    broker.submit_order(req("AAPL", "10", Side.BUY))
    aapl = positions(broker)["AAPL"]
    assert (aapl.qty, aapl.avg_entry_price, aapl.current_price) == (D("10"), D("200"), D("200"))
    assert aapl.opened_at == NOW
    assert aapl.catalyst is None
    assert broker.get_account().cash == D("23000.00")

    broker.set_price("AAPL", D("230"))
    clock.advance(timedelta(days=1))
    broker.submit_order(req("AAPL", "5", Side.BUY))
    aapl = positions(broker)["AAPL"]
    assert aapl.qty == D("15")
    assert aapl.avg_entry_price == (10 * D("200") + 5 * D("230")) / 15
    assert aapl.opened_at == NOW  # adding does not reset the age


def test_fractional_buy(broker: SimBroker) -> None:
    broker.submit_order(req("AAPL", "0.125", Side.BUY))
    assert positions(broker)["AAPL"].qty == D("0.125")
    assert broker.get_account().cash == D("25000.00") - D("25")


def test_cover_short(broker: SimBroker) -> None:
    before = broker.get_account()
    broker.submit_order(req("TSLA", "6", Side.BUY))
    tsla = positions(broker)["TSLA"]
    assert (tsla.qty, tsla.qty_available, tsla.avg_entry_price) == (D("-4"), D("0"), D("250"))
    after = broker.get_account()
    assert after.cash == before.cash - 6 * D("200")
    assert after.equity == before.equity
    with pytest.raises(BrokerRejection) as exc:  # the buy stop holds the other 4
        broker.submit_order(req("TSLA", "1", Side.BUY))
    assert exc.value.code == "40310000"
    cancel_open(broker, "TSLA")
    broker.submit_order(req("TSLA", "4", Side.BUY))
    assert "TSLA" not in positions(broker)


def test_sell_without_long_position_is_rejected(broker: SimBroker) -> None:
    for symbol in ("AAPL", "TSLA"):  # no position; a short (no further shorting)
        with pytest.raises(BrokerRejection) as exc:
            broker.submit_order(req(symbol, "1", Side.SELL))
        assert exc.value.code == "40310000"
        assert "available: 0)" in str(exc.value)


def test_insufficient_buying_power(broker: SimBroker) -> None:
    with pytest.raises(BrokerRejection) as exc:
        broker.submit_order(req("AAPL", "126", Side.BUY))  # 25200 > 25000
    assert (str(exc.value), exc.value.code) == ("insufficient buying power", "40310000")
    broker.submit_order(req("AAPL", "125", Side.BUY))  # exactly the cash
    assert broker.get_account().cash == 0


def test_no_price_is_rejected(broker: SimBroker) -> None:
    with pytest.raises(BrokerRejection) as exc:
        broker.submit_order(req("ZZZ", "1", Side.BUY))
    assert str(exc.value) == "no price for ZZZ"
    assert exc.value.code == "42210000"


@pytest.mark.parametrize("qty", ["0", "-1"])
def test_non_positive_qty_is_rejected(broker: SimBroker, qty: str) -> None:
    with pytest.raises(BrokerRejection) as exc:
        broker.submit_order(req("AAPL", qty, Side.BUY))
    assert exc.value.code == "40010001"


def test_stop_without_stop_price_is_rejected(broker: SimBroker) -> None:
    cancel_open(broker, "AMD")
    with pytest.raises(BrokerRejection) as exc:
        broker.submit_order(req("AMD", "1", Side.SELL, type=OrderType.STOP))
    assert exc.value.code == "40010001"


def test_rejected_orders_are_not_recorded(broker: SimBroker) -> None:
    with pytest.raises(BrokerRejection):
        broker.submit_order(req("AMD", "1", Side.SELL, cid="retry-me"))
    assert broker.get_order_by_client_id("retry-me") is None
    cancel_open(broker, "AMD")
    assert broker.submit_order(req("AMD", "1", Side.SELL, cid="retry-me")).filled_qty == 1


# ---------------------------------------------------------------- orders


def test_duplicate_client_order_id(broker: SimBroker) -> None:
    first = broker.submit_order(req("AAPL", "1", Side.BUY, cid="dup"))
    with pytest.raises(BrokerRejection) as exc:
        broker.submit_order(req("AAPL", "1", Side.BUY, cid="dup"))
    assert (str(exc.value), exc.value.code) == ("client_order_id must be unique", "40010001")
    # also for a seeded order's id, and for cancelled orders
    with pytest.raises(BrokerRejection):
        broker.submit_order(req("TSLA", "1", Side.BUY, cid="tsla-stop"))
    assert positions(broker)["AAPL"].qty == 1
    assert broker.get_order_by_client_id("dup") == first


def test_get_order_by_client_id(broker: SimBroker) -> None:
    assert broker.get_order_by_client_id("nope") is None
    order = broker.submit_order(req("AAPL", "1", Side.BUY, cid="decision-7-1"))
    found = broker.get_order_by_client_id("decision-7-1")
    assert found is not None and found.id == order.id
    assert found.status is OrderStatus.FILLED and found.symbol == "AAPL"


def test_symbols_are_upper_cased(broker: SimBroker) -> None:
    order = broker.submit_order(req("aapl", "1", Side.BUY))
    assert order.symbol == "AAPL"
    assert "NVDA" in positions(broker)  # "nvda" in the file


def test_cancel_errors(broker: SimBroker) -> None:
    with pytest.raises(BrokerRejection) as exc:
        broker.cancel_order(str(uuid.uuid4()))
    assert (str(exc.value), exc.value.code) == ("order not found", "40410000")
    with pytest.raises(BrokerRejection) as exc:
        broker.get_order("nope")
    assert exc.value.code == "40410000"

    filled = broker.submit_order(req("AAPL", "1", Side.BUY))
    with pytest.raises(BrokerRejection) as exc:
        broker.cancel_order(filled.id)
    assert (str(exc.value), exc.value.code) == ("order is not cancelable", "42210000")

    stop = broker.get_open_orders()[0]
    broker.cancel_order(stop.id)
    with pytest.raises(BrokerRejection) as exc:
        broker.cancel_order(stop.id)
    assert exc.value.code == "42210000"
    assert stop.id not in {o.id for o in broker.get_open_orders()}


def test_resting_orders_never_trigger(broker: SimBroker) -> None:
    broker.set_price("AMD", D("50"))  # far through the 85 stop
    stop = next(o for o in broker.get_open_orders() if o.symbol == "AMD")
    assert broker.get_order(stop.id).status is OrderStatus.NEW
    assert positions(broker)["AMD"].qty == 120


def test_set_price_validates(broker: SimBroker) -> None:
    with pytest.raises(ValueError):
        broker.set_price("AMD", D("0"))
    broker.set_price("amd", D("140"))
    assert positions(broker)["AMD"].current_price == D("140")
    assert broker.get_account().equity == D("25000.00") + D("16800") + D("1250") - D("2000")


def test_every_mutation_is_saved(broker: SimBroker, store: InMemorySimStateStore) -> None:
    broker.get_account()
    saves = store.saves["dee-bot"]
    broker.get_positions()
    broker.get_open_orders()
    assert store.saves["dee-bot"] == saves  # reads do not write
    broker.submit_order(req("AAPL", "1", Side.BUY))
    broker.set_price("AAPL", D("1"))
    broker.cancel_order(broker.get_open_orders()[0].id)
    assert store.saves["dee-bot"] == saves + 3
