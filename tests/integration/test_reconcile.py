"""Reconciliation: every difference between the database and the broker is found,
repaired in the database and logged as one event (SPEC §4), on the simulated
broker and through alpaca-py against the fake Alpaca."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import structlog
from structlog.testing import capture_logs

from rebalancerd.adapters.alpaca import AlpacaBroker
from rebalancerd.adapters.calendar import NyseCalendar
from rebalancerd.adapters.db.store import SqlStore
from rebalancerd.adapters.sim_broker import SimBroker
from rebalancerd.config.portfolio_file import load_sim_portfolio
from rebalancerd.config.settings import AccountConfig
from rebalancerd.domain.model import Action, OrderType, Side, Status
from rebalancerd.ports import Broker, OrderRequest, PositionRecord
from rebalancerd.services.accounts import AccountContext
from rebalancerd.services.orders import OrderSender, client_order_id
from rebalancerd.services.reconcile import Reconciler
from tests.fake_alpaca import FakeAlpaca, running_fake
from tests.fakes import FakeClock
from tests.integration.conftest import new_decision

ACCOUNT = "paper"
NOW = datetime(2026, 11, 30, 14, 31, tzinfo=UTC)
TZ = ZoneInfo("America/New_York")
PORTFOLIO = {
    "cash": "20000",
    "positions": [
        {"symbol": "AMD", "qty": "120", "avg_entry_price": "100", "current_price": "131",
         "opened_at": "2026-10-26"},
        {"symbol": "KO", "qty": "100", "avg_entry_price": "60", "current_price": "61",
         "opened_at": "2026-09-01"},
    ],
    "open_orders": [{"symbol": "AMD", "side": "sell", "type": "stop", "qty": "100",
                     "stop_price": "85", "client_order_id": "operator-stop"}],
}  # fmt: skip


def record(symbol: str, opened: datetime = datetime(2026, 10, 1, tzinfo=UTC)) -> PositionRecord:
    return PositionRecord(ACCOUNT, symbol, opened, "broker", D(100))


def context(broker: Broker) -> AccountContext:
    config = AccountConfig(broker="alpaca", stop_loss_pct=D(15))
    return AccountContext(ACCOUNT, config, broker, TZ, NyseCalendar())


def reconciler(store: SqlStore) -> Reconciler:
    clock = FakeClock(NOW)
    return Reconciler(store, clock, OrderSender(store, clock, sleep=lambda _: None))


def events(logs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The reconciliation's difference events (a background thread of an earlier
    test, e.g. a webhook notifier still retrying, may log into the capture too)."""
    skip = {"reconciliation_finished", "order_submitted", "order_recovered"}
    ours = ("order_", "unknown_broker_order", "position_")
    return sorted(
        (e["event"], e.get("symbol") or e.get("client_order_id", ""))
        for e in logs
        if e["event"] not in skip and e["event"].startswith(ours)
    )


@pytest.fixture(autouse=True)
def all_levels() -> Iterator[None]:
    """Every level reaches capture_logs, whatever an earlier test configured."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    yield
    structlog.configure(**saved)


@pytest.fixture
def sim(store: SqlStore, tmp_path: Path) -> SimBroker:
    path = tmp_path / "portfolio.json"
    path.write_text(json.dumps(PORTFOLIO))
    return SimBroker(ACCOUNT, load_sim_portfolio(path), store, FakeClock(NOW))


def test_a_clean_account_has_no_differences(store: SqlStore, sim: SimBroker) -> None:
    store.open_position_record(record("AMD"))
    store.open_position_record(record("KO"))
    rec = reconciler(store)
    report = rec.run(context(sim), NOW)
    assert report.unknown_broker_orders == ["operator-stop"]  # the operator's own stop
    assert report.differences == 1


def test_every_kind_of_difference_is_found_repaired_and_logged(
    store: SqlStore, sim: SimBroker
) -> None:
    store.open_position_record(record("AMD"))
    store.open_position_record(record("TSLA"))  # sold by hand since
    # An exit whose submit reached the broker, then the process died.
    exit_ = store.record_decision(new_decision(account=ACCOUNT, symbol="AMD", qty=D(20)), None)
    store.transition(exit_.id, Status.SUBMITTED, at=NOW)
    sent = OrderRequest("AMD", D(20), Side.SELL, client_order_id(exit_.uid))
    store.record_order(exit_.id, sent, at=NOW)
    sim.submit_order(sent)
    # A protective stop recorded after a filled trim, never sent.
    trim = store.record_decision(new_decision(account=ACCOUNT, symbol="KO", qty=D(10)), None)
    for status in (Status.SUBMITTED, Status.FILLED):
        store.transition(trim.id, status, at=NOW)
    stop_id = client_order_id(trim.uid, "s", 1)
    stop = OrderRequest("KO", D(90), Side.SELL, stop_id, OrderType.STOP, "gtc", D(51))
    store.record_order(trim.id, stop, at=NOW)

    with capture_logs() as logs:
        report = reconciler(store).run(context(sim), NOW)

    assert events(logs) == [
        ("order_not_at_broker", "KO"),
        ("order_reconciled", "AMD"),
        ("position_adopted", "KO"),
        ("position_closed_outside", "TSLA"),
        ("unknown_broker_order", "AMD"),
    ]
    assert report.differences == 5
    amd = store.orders_for_decision(exit_.id)[0]
    assert (amd.status, amd.filled_qty, amd.filled_avg_price) == ("filled", D(20), D(131))
    assert amd.broker_order_id is not None
    resent = sim.get_order_by_client_id(stop_id)  # the stop now protects KO
    assert resent is not None and (resent.qty, resent.stop_price) == (D(90), D(51))
    records = store.position_records(ACCOUNT)
    assert sorted(records) == ["AMD", "KO"]
    assert records["KO"].opened_at == datetime(2026, 9, 1, 4, tzinfo=UTC)  # from the broker
    assert records["KO"].opened_at_source == "broker"
    # Reconciling again finds only the operator's stop.
    again = reconciler(store).run(context(sim), NOW)
    assert (again.differences, again.unknown_broker_orders) == (1, ["operator-stop"])


def test_an_intent_of_a_decision_in_flight_is_left_to_the_execution(
    store: SqlStore, sim: SimBroker
) -> None:
    d = store.record_decision(new_decision(account=ACCOUNT, symbol="AMD", qty=D(20)), None)
    store.transition(d.id, Status.SUBMITTED, at=NOW)
    store.record_order(d.id, OrderRequest("AMD", D(20), Side.SELL, client_order_id(d.uid)), at=NOW)
    report = reconciler(store).run(context(sim), NOW)
    assert report.orders_not_at_broker == [client_order_id(d.uid)]
    assert [o.status for o in store.orders_for_decision(d.id)] == ["pending_submit"]
    assert sim.get_order_by_client_id(client_order_id(d.uid)) is None  # nothing sent
    assert store.get_decision(d.id).status is Status.SUBMITTED


def test_a_position_the_daemon_exited_is_closed_without_alarm(
    store: SqlStore, sim: SimBroker
) -> None:
    store.open_position_record(record("AMD"))
    store.open_position_record(record("KO"))
    store.open_position_record(record("NVDA"))
    d = store.record_decision(
        new_decision(account=ACCOUNT, symbol="NVDA", action=Action.EXIT), None
    )
    for status in (Status.SUBMITTED, Status.FILLED):
        store.transition(d.id, status, at=NOW)
    with capture_logs() as logs:
        reconciler(store).run(context(sim), NOW)
    closed = [e for e in logs if e["event"] == "position_closed_outside"]
    assert [(e["symbol"], e["reason"]) for e in closed] == [("NVDA", "exit_filled")]


# ------------------------------------------------------------------ fake Alpaca


@pytest.fixture
def fake() -> Iterator[FakeAlpaca]:
    with running_fake() as server:
        yield server


def test_through_alpaca_py_a_hand_opened_position_is_adopted_with_its_fill_date(
    store: SqlStore, fake: FakeAlpaca
) -> None:
    opened = datetime(2026, 10, 6, 14, 45, 12, tzinfo=UTC)
    fake.state.add_position("NVDA", D(5), D(400), D(450), opened_at=opened)
    fake.state.place_order({"symbol": "NVDA", "qty": "5", "side": "sell", "type": "stop",
                            "time_in_force": "gtc", "stop_price": "340",
                            "client_order_id": "by-hand"})  # fmt: skip
    store.open_position_record(record("AMD"))  # closed by hand
    d = store.record_decision(new_decision(account=ACCOUNT, symbol="NVDA", qty=D(5)), None)
    store.transition(d.id, Status.SUBMITTED, at=NOW)
    store.record_order(d.id, OrderRequest("NVDA", D(1), Side.SELL, "rbd-lost-x1"), at=NOW)
    broker = AlpacaBroker(
        fake.api_key, fake.secret_key, base_url=fake.base_url, sleep=lambda _: None
    )
    fake.reset_counts()
    with capture_logs() as logs:
        report = reconciler(store).run(context(broker), NOW)
    assert events(logs) == [
        ("order_not_at_broker", "NVDA"),
        ("position_adopted", "NVDA"),
        ("position_closed_outside", "AMD"),
        ("unknown_broker_order", "NVDA"),
    ]
    assert report.unknown_broker_orders == ["by-hand"]
    nvda = store.position_records(ACCOUNT)["NVDA"]
    assert (nvda.opened_at, nvda.opened_at_source) == (opened, "broker")
    # Constant reads: positions (+1 activity page), open orders, one lookup per lost order.
    assert fake.total == 4


def test_an_unsent_stop_of_a_position_that_is_gone_is_not_sent(
    store: SqlStore, sim: SimBroker
) -> None:
    """Sending it would open a short: the row is closed instead."""
    trim = store.record_decision(new_decision(account=ACCOUNT, symbol="GONE", qty=D(10)), None)
    for status in (Status.SUBMITTED, Status.FILLED):
        store.transition(trim.id, status, at=NOW)
    stop_id = client_order_id(trim.uid, "s", 1)
    stop = OrderRequest("GONE", D(90), Side.SELL, stop_id, OrderType.STOP, "gtc", D(51))
    store.record_order(trim.id, stop, at=NOW)
    sent: list[OrderRequest] = []

    class Counting:
        def __getattr__(self, name: str) -> Any:
            return getattr(sim, name)

        def submit_order(self, request: OrderRequest) -> Any:
            sent.append(request)
            return sim.submit_order(request)

    report = reconciler(store).run(context(Counting()), NOW)  # type: ignore[arg-type]
    assert report.orders_not_at_broker == [stop_id]
    assert sent == []
    assert store.unresolved_orders(ACCOUNT) == []
