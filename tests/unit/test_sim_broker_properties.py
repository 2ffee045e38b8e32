"""Property test: random order sequences keep the simulated account consistent.

Whatever mix of valid and invalid orders arrives, cash never goes negative, a
long never goes below zero, a short never grows, and equity moves only when a
price moves (a fill at the current price swaps cash for shares of equal value).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from rebalancerd.adapters.sim_broker import SimBroker
from rebalancerd.config.portfolio_file import SimPortfolioSpec
from rebalancerd.domain.model import OrderType, Side
from rebalancerd.errors import BrokerRejection
from rebalancerd.ports import OrderRequest
from tests.fakes import FakeClock, InMemorySimStateStore

SYMBOLS = ["AMD", "NVDA", "TSLA", "AAPL", "NOPRICE"]

SPEC = SimPortfolioSpec.model_validate(
    {
        "cash": "5000",
        "positions": [
            {"symbol": "AMD", "qty": "30", "avg_entry_price": "100", "current_price": "131"},
            {"symbol": "NVDA", "qty": "2.5", "avg_entry_price": "400", "current_price": "500"},
            {"symbol": "TSLA", "qty": "-10", "avg_entry_price": "250", "current_price": "200"},
        ],
        "open_orders": [
            {"symbol": "AMD", "side": "sell", "type": "stop", "qty": "10", "stop_price": "85"},
        ],
        "prices": {"AAPL": "200"},
    }
)

quantities = st.one_of(
    st.integers(min_value=-1, max_value=12).map(D),
    st.integers(min_value=13, max_value=60).map(D),
    st.decimals(min_value=D("0.001"), max_value=D("3"), places=3),
)
prices = st.decimals(min_value=D("0.01"), max_value=D("1000"), places=2)

submit = st.tuples(
    st.just("submit"),
    st.sampled_from(SYMBOLS),
    quantities,
    st.sampled_from([Side.BUY, Side.SELL]),
    st.sampled_from([OrderType.MARKET, OrderType.MARKET, OrderType.STOP]),
)
cancel = st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=5))
reprice = st.tuples(st.just("price"), st.sampled_from(SYMBOLS[:4]), prices)
duplicate = st.tuples(st.just("duplicate"))
operations = st.lists(st.one_of(submit, submit, cancel, reprice, duplicate), max_size=40)


def equity_at(broker: SimBroker, symbol: str, price: D) -> D:
    """The equity the account would have with ``symbol`` priced at ``price``."""
    account = broker.get_account()
    for p in broker.get_positions():
        if p.symbol == symbol:
            old = p.current_price if p.current_price is not None else p.avg_entry_price
            return account.equity + p.qty * (price - old)
    return account.equity


@settings(max_examples=200, deadline=None)
@given(ops=operations)
def test_random_orders_keep_the_account_consistent(ops: list[tuple[Any, ...]]) -> None:
    clock = FakeClock(datetime(2026, 11, 30, 15, 0, tzinfo=UTC))
    broker = SimBroker("prop", SPEC, InMemorySimStateStore(), clock)
    short_floor = {p.symbol: p.qty for p in broker.get_positions() if p.qty < 0}
    cids: list[str] = []

    for n, op in enumerate(ops):
        clock.advance(timedelta(seconds=1))
        expected = broker.get_account().equity
        if op[0] == "submit":
            _, symbol, qty, side, type_ = op
            cid = f"cid-{n}"
            request = OrderRequest(
                symbol=symbol,
                qty=qty,
                side=side,
                client_order_id=cid,
                type=type_,
                stop_price=D("1") if type_ is OrderType.STOP else None,
            )
            try:
                order = broker.submit_order(request)
            except BrokerRejection as exc:
                event(f"rejected {exc.code}")
                assert exc.code in {"40010001", "40310000", "42210000"}
                assert broker.get_order_by_client_id(cid) is None
            else:
                event(f"accepted {order.type.value} {order.side.value}")
                cids.append(cid)
                assert order.qty == qty > 0
        elif op[0] == "cancel":
            open_orders = broker.get_open_orders()
            if open_orders:
                broker.cancel_order(open_orders[op[1] % len(open_orders)].id)
        elif op[0] == "price":
            _, symbol, price = op
            expected = equity_at(broker, symbol, price)
            broker.set_price(symbol, price)
        elif cids:  # duplicate client_order_id: always refused, nothing changes
            try:
                broker.submit_order(OrderRequest("AAPL", D(1), Side.BUY, cids[0]))
            except BrokerRejection as exc:
                assert exc.code == "40010001"
            else:  # pragma: no cover - the assertion below reports it
                raise AssertionError("duplicate client_order_id accepted")

        account = broker.get_account()
        assert account.cash >= 0
        assert account.equity == expected
        for p in broker.get_positions():
            assert p.qty != 0
            assert 0 <= p.qty_available <= abs(p.qty)
            if p.symbol in short_floor:
                assert short_floor[p.symbol] <= p.qty < 0  # a short only shrinks
            else:
                assert p.qty > 0  # never sold below zero
