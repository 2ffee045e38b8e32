"""SqlStore orders, position records, simulated state and job runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from rebalancerd.adapters.db.models import job_runs, position_records
from rebalancerd.adapters.db.store import SqlStore
from rebalancerd.domain.model import OrderStatus, OrderType, Side
from rebalancerd.errors import NotFound, StoreError
from rebalancerd.ports import BrokerOrder, NewDecision, OrderRequest, PositionRecord

from .conftest import T0

MakeDecision = Callable[..., NewDecision]


def _request(client_order_id: str = "rb-1-exit", **kw: object) -> OrderRequest:
    fields: dict[str, object] = {
        "symbol": "AAPL",
        "qty": Decimal("10.5"),
        "side": Side.SELL,
        "client_order_id": client_order_id,
    }
    fields.update(kw)
    return OrderRequest(**fields)  # type: ignore[arg-type]


def _broker_order(request: OrderRequest, status: OrderStatus, filled: str = "0") -> BrokerOrder:
    return BrokerOrder(
        id=f"broker-{request.client_order_id}",
        client_order_id=request.client_order_id,
        symbol=request.symbol,
        side=request.side,
        type=request.type,
        qty=request.qty,
        status=status,
        filled_qty=Decimal(filled),
        filled_avg_price=Decimal("187.123456789") if filled != "0" else None,
    )


# ----------------------------------------------------------------- orders


def test_order_intent_then_broker_updates(store: SqlStore, make_decision: MakeDecision) -> None:
    d = store.record_decision(make_decision(), None)
    request = _request(type=OrderType.STOP, stop_price=Decimal("90.10"), time_in_force="gtc")

    intent = store.record_order(d.id, request, at=T0)

    assert intent.status == "pending_submit"
    assert (intent.decision_id, intent.client_order_id, intent.symbol) == (
        d.id,
        "rb-1-exit",
        "AAPL",
    )
    assert (intent.side, intent.type) == (Side.SELL, OrderType.STOP)
    assert intent.qty == Decimal("10.5") and intent.stop_price == Decimal("90.1")
    assert intent.filled_qty == 0 and intent.broker_order_id is None
    assert intent.created_at == T0 and intent.created_at.tzinfo is UTC
    assert store.unresolved_orders("paper") == [intent]

    accepted = store.update_order(
        "rb-1-exit",
        status="accepted",
        at=T0,
        broker_order=_broker_order(request, OrderStatus.ACCEPTED),
    )
    assert accepted.broker_order_id == "broker-rb-1-exit" and accepted.status == "accepted"
    assert store.unresolved_orders("paper") == [accepted]

    filled = store.update_order(
        "rb-1-exit",
        status="filled",
        at=T0 + timedelta(seconds=5),
        broker_order=_broker_order(request, OrderStatus.FILLED, filled="10.5"),
    )
    assert filled.filled_qty == Decimal("10.5")
    assert filled.filled_avg_price == Decimal("187.123456789")
    assert store.unresolved_orders("paper") == []
    assert store.orders_for_decision(d.id) == [filled]


def test_rejected_order_keeps_the_error(store: SqlStore, make_decision: MakeDecision) -> None:
    d = store.record_decision(make_decision(), None)
    store.record_order(d.id, _request(), at=T0)
    rejected = store.update_order("rb-1-exit", status="rejected", at=T0, error="insufficient qty")
    assert rejected.error == "insufficient qty"
    assert store.unresolved_orders("paper") == []


def test_unresolved_orders_are_per_account(store: SqlStore, make_decision: MakeDecision) -> None:
    mine = store.record_decision(make_decision(), None)
    theirs = store.record_decision(make_decision(account="live"), None)
    store.record_order(mine.id, _request("a"), at=T0)
    store.record_order(theirs.id, _request("b"), at=T0)
    store.record_order(mine.id, _request("c"), at=T0)
    store.update_order("c", status="canceled", at=T0)
    assert [o.client_order_id for o in store.unresolved_orders("paper")] == ["a"]
    assert [o.client_order_id for o in store.unresolved_orders("live")] == ["b"]


def test_recording_an_order_twice_returns_the_first(
    store: SqlStore, make_decision: MakeDecision
) -> None:
    d = store.record_decision(make_decision(), None)
    first = store.record_order(d.id, _request(), at=T0)
    again = store.record_order(d.id, _request(qty=Decimal(99)), at=T0 + timedelta(hours=1))
    assert again == first
    other = store.record_decision(make_decision(symbol="MSFT"), None)
    with pytest.raises(StoreError, match="already belongs"):
        store.record_order(other.id, _request(), at=T0)


def test_order_without_decision_needs_an_account(store: SqlStore) -> None:
    with pytest.raises(ValueError, match="account"):
        store.record_order(None, _request(), at=T0)
    order = store.record_order(None, _request("manual-1"), at=T0, account="paper")
    assert order.decision_id is None
    assert store.unresolved_orders("paper") == [order]


def test_unknown_order_and_decision(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        store.update_order("nope", status="filled", at=T0)
    with pytest.raises(NotFound):
        store.record_order(12345, _request(), at=T0)
    assert store.orders_for_decision(12345) == []


# ----------------------------------------------------------------- position records


def _record(symbol: str = "AAPL", **kw: object) -> PositionRecord:
    fields: dict[str, object] = {
        "account": "paper",
        "symbol": symbol,
        "opened_at": datetime(2024, 9, 3, 13, 31, 7, 123456, tzinfo=UTC),
        "opened_at_source": "fill_history",
        "avg_entry_price": Decimal("187.4321"),
        "catalyst": "earnings",
        "catalyst_date": date(2024, 11, 15),
        "profit_levels_taken": frozenset({"weekly:20"}),
    }
    fields.update(kw)
    return PositionRecord(**fields)  # type: ignore[arg-type]


def test_position_record_round_trip(store: SqlStore) -> None:
    created = store.open_position_record(_record())
    assert created == _record()
    assert store.position_records("paper") == {"AAPL": created}
    assert store.position_records("live") == {}
    with store.engine.connect() as conn:
        assert conn.execute(select(position_records.c.first_seen_at)).scalar_one() == T0


def test_an_existing_open_record_wins(store: SqlStore) -> None:
    first = store.open_position_record(_record())
    second = store.open_position_record(
        _record(opened_at=T0, opened_at_source="first_seen", avg_entry_price=Decimal(1))
    )
    assert second == first
    assert len(store.position_records("paper")) == 1


def test_closed_records_allow_a_new_open_one(store: SqlStore) -> None:
    store.open_position_record(_record())
    store.close_position_record("paper", "AAPL", at=T0)
    store.close_position_record("paper", "AAPL", at=T0)  # nothing open: no-op
    assert store.position_records("paper") == {}

    reopened = store.open_position_record(_record(opened_at=T0, profit_levels_taken=frozenset()))
    assert reopened.opened_at == T0 and reopened.profit_levels_taken == frozenset()
    store.close_position_record("paper", "AAPL", at=T0 + timedelta(days=1))
    with store.engine.connect() as conn:
        assert conn.execute(select(position_records.c.closed_at)).scalars().all() == [
            T0,
            T0 + timedelta(days=1),
        ]


def test_partial_unique_index_refuses_two_open_records(store: SqlStore) -> None:
    store.open_position_record(_record())
    row = {
        "account": "paper",
        "symbol": "AAPL",
        "opened_at": T0,
        "opened_at_source": "first_seen",
        "avg_entry_price": Decimal(1),
        "profit_levels_taken": [],
        "first_seen_at": T0,
    }
    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        conn.execute(position_records.insert().values(row))
    with store.engine.begin() as conn:  # a closed one alongside is fine
        conn.execute(position_records.insert().values({**row, "closed_at": T0}))


# ----------------------------------------------------------------- sim state, job runs


def test_sim_state_upsert(store: SqlStore) -> None:
    assert store.load_sim_state("paper") is None
    state = {"cash": "1000.50", "positions": [{"symbol": "AAPL", "qty": "3"}], "n": 1, "ok": True}
    store.save_sim_state("paper", state)
    assert store.load_sim_state("paper") == state
    store.save_sim_state("paper", {"cash": "0"})
    assert store.load_sim_state("paper") == {"cash": "0"}
    assert store.load_sim_state("live") is None


def test_job_runs(store: SqlStore) -> None:
    scheduled = datetime(2024, 11, 2, 14, 0, tzinfo=UTC)
    run = store.start_run("review", "paper", scheduled_at=scheduled, started_at=T0)
    other = store.start_run("reconcile", None, scheduled_at=None, started_at=T0)
    assert other != run
    store.finish_run(run, outcome="failed", finished_at=T0 + timedelta(seconds=3), error="boom")

    with store.engine.connect() as conn:
        rows = conn.execute(select(job_runs).order_by(job_runs.c.id)).mappings().all()
    assert [(r["job"], r["account"], r["outcome"]) for r in rows] == [
        ("review", "paper", "failed"),
        ("reconcile", None, "running"),
    ]
    assert rows[0]["scheduled_at"] == scheduled
    assert rows[0]["finished_at"] == T0 + timedelta(seconds=3) and rows[0]["error"] == "boom"
    with pytest.raises(NotFound):
        store.finish_run(9999, outcome="succeeded", finished_at=T0)


def test_accounts_are_created_on_first_write(store: SqlStore, make_decision: MakeDecision) -> None:
    store.save_sim_state("sim", {})
    store.start_run("guard", "guard-only", scheduled_at=None, started_at=T0)
    store.record_decision(make_decision(account="sim"), None)
    with store.engine.connect() as conn:
        names = conn.execute(text("SELECT name FROM accounts ORDER BY name")).scalars().all()
    assert names == ["guard-only", "sim"]
