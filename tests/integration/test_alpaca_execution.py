"""The execution against the fake Alpaca through alpaca-py (SPEC §4):
exits sized from ``qty_available``, stops cancelled and confirmed before a
sale and put back when it is refused, partial fills recorded, a bounded
wait, entries sized to the cash the exits really freed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from rebalancerd.adapters.alpaca import AlpacaBroker
from rebalancerd.adapters.calendar import NyseCalendar
from rebalancerd.adapters.db.store import SqlStore
from rebalancerd.config.settings import AccountConfig
from rebalancerd.domain.model import Action, SkipReason, Status
from rebalancerd.ports import DecisionRecord
from rebalancerd.services.accounts import AccountContext
from rebalancerd.services.evaluate import RunOptions
from rebalancerd.services.execute import ExecutionService
from rebalancerd.services.orders import OrderSender, client_order_id
from tests.fake_alpaca import FakeAlpaca, running_fake
from tests.fakes import FakeClock
from tests.integration.conftest import new_decision

ACCOUNT = "paper"
NOW = datetime(2026, 11, 30, 14, 31, tzinfo=UTC)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def fake() -> Iterator[FakeAlpaca]:
    with running_fake() as server:
        server.state.cash = D("1000")
        server.state.add_position("AMD", D(100), D(100), D(131))
        yield server


class Harness:
    def __init__(self, store: SqlStore, fake: FakeAlpaca, **sender: Any):
        self.store, self.fake, self.sleeps = store, fake, Sleeps()
        broker = AlpacaBroker(fake.api_key, fake.secret_key, base_url=fake.base_url,
                              timeout=0.5, sleep=self.sleeps)  # fmt: skip
        config = AccountConfig(broker="alpaca", stop_loss_pct=D(15))
        self.ctx = AccountContext(ACCOUNT, config, broker, ZoneInfo("America/New_York"),
                                  NyseCalendar())  # fmt: skip
        self.sender = OrderSender(store, FakeClock(NOW), sleep=self.sleeps, **sender)

    def decide(self, action: Action, symbol: str, qty: str = "0", **kw: Any) -> DecisionRecord:
        new = new_decision(account=ACCOUNT, action=action, symbol=symbol, qty=D(qty),
                           execute_at=NOW, **kw)  # fmt: skip
        return self.store.record_decision(new, None)

    def run(self) -> dict[str, DecisionRecord]:
        out = ExecutionService(self.store, self.sender).run(self.ctx, NOW, RunOptions(), NOW)
        return {d.symbol: d for d in out}

    def stop(self, symbol: str, qty: str, price: str, cid: str) -> None:
        self.fake.state.place_order({"symbol": symbol, "qty": qty, "side": "sell", "type": "stop",
                                     "time_in_force": "gtc", "stop_price": price,
                                     "client_order_id": cid})  # fmt: skip

    def orders(self, symbol: str) -> list[tuple[str, str, D, str]]:
        return [(o.type, o.side, o.qty, o.status)
                for o in self.fake.state.orders.values() if o.symbol == symbol]  # fmt: skip


def test_a_sale_is_sized_from_the_shares_available(store: SqlStore, fake: FakeAlpaca) -> None:
    h = Harness(store, fake)
    fake.state.market_open = False  # the operator's market sell rests, holding 30 shares
    fake.state.place_order({"symbol": "AMD", "qty": "30", "side": "sell", "type": "market",
                            "time_in_force": "day", "client_order_id": "by-hand"})  # fmt: skip
    fake.state.market_open = True
    d = h.decide(Action.EXIT, "AMD", "100")
    assert h.run()["AMD"].status is Status.FILLED
    sale = fake.state.get_by_client_id(client_order_id(d.uid))
    assert (sale.qty, sale.status) == (D(70), "filled")


def test_a_pending_cancel_stop_is_awaited_before_the_sale(
    store: SqlStore, fake: FakeAlpaca
) -> None:
    h = Harness(store, fake)
    h.stop("AMD", "100", "85", "operator-stop")
    fake.state.cancel_pending_polls = 3
    h.decide(Action.TRIM, "AMD", "40")
    assert h.run()["AMD"].status is Status.FILLED
    assert sorted(h.orders("AMD")) == [
        ("market", "sell", D(40), "filled"),
        ("stop", "sell", D(60), "new"),  # re-placed for what is left
        ("stop", "sell", D(100), "canceled"),
    ]
    assert len(h.sleeps) >= 2  # it polled through pending_cancel


def test_a_refused_sale_puts_the_stop_back(store: SqlStore, fake: FakeAlpaca) -> None:
    h = Harness(store, fake)
    h.stop("AMD", "100", "85", "operator-stop")
    fake.state.untradable.add("AMD")
    d = h.decide(Action.EXIT, "AMD", "100")
    got = h.run()["AMD"]
    assert got.status is Status.REJECTED
    assert "not tradable" in (store.decision_history(d.id)[-1].note or "")
    live = [(o.qty, o.stop_price) for o in fake.state.orders.values() if o.is_open]
    assert live == [(D(100), D(85))]


def test_a_partial_fill_is_recorded_and_the_wait_is_bounded(
    store: SqlStore, fake: FakeAlpaca
) -> None:
    h = Harness(store, fake, fill_timeout=2.0, poll_interval=0.5)
    fake.state.partial_fill = D("0.5")
    d = h.decide(Action.EXIT, "AMD", "100")
    # Still working after the bounded wait: the decision stays submitted (resumed by
    # the next run, never re-sent) while its order records the partial fill.
    assert h.run()["AMD"].status is Status.SUBMITTED
    assert h.sleeps == [0.5] * 4  # fill_timeout / poll_interval polls, then it moves on
    order = store.orders_for_decision(d.id)[0]
    assert (order.status, order.filled_qty, order.filled_avg_price) == (
        "partially_filled", D(50), D(131)
    )  # fmt: skip
    # The rest fills later; the next run finds it by lookup and settles it.
    fake.state.fill_order(order.broker_order_id or "")
    h.run()
    assert store.get_decision(d.id).status is Status.FILLED
    assert store.orders_for_decision(d.id)[0].filled_qty == D(100)


def test_entries_are_sized_to_the_cash_the_exits_freed(store: SqlStore, fake: FakeAlpaca) -> None:
    h = Harness(store, fake)
    fake.state.set_price("AAPL", D(200))
    fake.state.set_price("MSFT", D(2500))
    h.decide(Action.EXIT, "AMD", "100")  # frees 13,100 on top of 1,000 cash
    h.decide(Action.BUY, "AAPL", "60")  # 12,000
    h.decide(Action.BUY, "MSFT", "2")  # 2,100 left: not one share fits
    got = h.run()
    assert (got["AMD"].status, got["AAPL"].status) == (Status.FILLED, Status.FILLED)
    assert (got["MSFT"].status, got["MSFT"].skip_reason) == (
        Status.SKIPPED, SkipReason.INSUFFICIENT_CASH
    )  # fmt: skip
    assert fake.state.positions["AAPL"].qty == D(60)
    assert sorted(h.orders("AAPL")) == [
        ("market", "buy", D(60), "filled"),
        ("stop", "sell", D(60), "new"),  # the protective GTC stop at -15%
    ]
    assert [o.stop_price for o in fake.state.orders.values() if o.type == "stop"] == [D(170)]
    assert h.orders("MSFT") == []
