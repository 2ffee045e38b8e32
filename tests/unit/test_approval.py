"""The approval lifecycle: approve, reject, expire, approve-after-change, and the slots.

Runs the real services on a SQLite file with the simulated broker and a clock
the test moves: the demo portfolio's Saturday review with ``approval = "always"``
queues SHOP (EXIT 80), MSFT (TRIM 10) and AMD (TRIM 50) for Monday 2026-11-30
09:30, holding all three of dee-bot's weekly slots (KO and ENPH are skipped).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from rebalancerd.adapters.calendar import NyseCalendar
from rebalancerd.composition import App, build_app
from rebalancerd.config.settings import load_settings
from rebalancerd.domain.model import Action, Side, Source, Status
from rebalancerd.errors import NotFound, UsageError
from rebalancerd.ports import BrokerPosition, DecisionFilter, DecisionRecord, OrderRequest
from rebalancerd.services.approval import operator_name, position_changed, window_end
from rebalancerd.services.jobs import Jobs
from tests.e2e.conftest import example_config
from tests.fakes import FakeClock

NY = ZoneInfo("America/New_York")
SATURDAY = datetime(2026, 11, 28, 12, 0, tzinfo=NY)
SUNDAY = datetime(2026, 11, 29, 18, 0, tzinfo=NY)
MONDAY_OPEN = datetime(2026, 11, 30, 9, 30, tzinfo=NY)
WEEK = date(2026, 11, 30)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(SATURDAY)


@pytest.fixture
def app(tmp_path: Path, clock: FakeClock) -> Iterator[App]:
    config = example_config(tmp_path, replace={'approval = "never"': 'approval = "always"'})
    application = build_app(load_settings(config, environ={}, env_file=None), clock=clock)
    yield application
    application.close()


def review(app: App) -> dict[str, DecisionRecord]:
    result = Jobs(app).review(["dee-bot"])
    assert result.ok, result.failures
    return {d.symbol: d for d in result.decisions}


def statuses(app: App) -> dict[str, str]:
    found = app.store.list_decisions(DecisionFilter(account="dee-bot"))
    latest = {d.symbol: d.status.value for d in found}
    return latest


def slot_symbols(app: App) -> list[str]:
    return sorted(s.symbol for s in app.store.slots("dee-bot", WEEK))


def sell(app: App, symbol: str, qty: str) -> None:
    """Someone sells shares by hand at the broker (not through a decision)."""
    broker = app.account("dee-bot").broker
    for order in broker.get_open_orders():
        if order.symbol == symbol:
            broker.cancel_order(order.id)  # the stop holds the shares
    broker.submit_order(OrderRequest(symbol, Decimal(qty), Side.SELL, f"manual-{symbol}-{qty}"))


def test_review_with_approval_always_queues_pending_decisions_holding_slots(app: App) -> None:
    queued = review(app)
    pending = {s for s, d in queued.items() if d.status is Status.PENDING_APPROVAL}
    assert pending == {"SHOP", "MSFT", "AMD"}
    assert slot_symbols(app) == ["AMD", "MSFT", "SHOP"]
    assert [d.symbol for d in app.approval.pending()] == ["SHOP", "MSFT", "AMD"]


def test_approve_records_who_and_when_and_keeps_the_slot(app: App, clock: FakeClock) -> None:
    shop = review(app)["SHOP"]
    clock.set(SUNDAY)
    [outcome] = app.approval.approve([shop.id], actor="alice", now=clock.now())
    assert outcome.ok and outcome.decision.status is Status.APPROVED
    last = app.store.decision_history(shop.id)[-1]
    assert (last.status, last.actor, last.at) == (Status.APPROVED, "alice", SUNDAY)
    assert last.note == "approved by alice"
    assert slot_symbols(app) == ["AMD", "MSFT", "SHOP"]


def test_reject_gives_the_slot_back_and_the_next_review_uses_it(app: App, clock: FakeClock) -> None:
    msft = review(app)["MSFT"]
    [outcome] = app.approval.reject([msft.id], actor="bob", now=clock.now(), reason="keep it")
    assert outcome.ok and outcome.decision.status is Status.REJECTED
    last = app.store.decision_history(msft.id)[-1]
    assert (last.actor, last.note) == ("bob", "rejected by bob: keep it")
    assert slot_symbols(app) == ["AMD", "SHOP"]
    # The freed slot is free for the next review: its highest-priority candidate
    # takes it (MSFT is still over-weight; concentration outranks KO's staleness).
    again = review(app)
    taken = [s for s, d in again.items() if d.status is Status.PENDING_APPROVAL]
    assert taken == ["MSFT"]
    assert len(slot_symbols(app)) == 3


@pytest.mark.parametrize(
    ("now", "expired"),
    [
        (datetime(2026, 11, 30, 15, 59, tzinfo=NY), False),  # window still open
        (datetime(2026, 11, 30, 16, 0, tzinfo=NY), True),  # Monday's close
        (datetime(2026, 12, 2, 10, 0, tzinfo=NY), True),
    ],
)
def test_pending_decisions_expire_when_the_window_closes(
    app: App, now: datetime, expired: bool
) -> None:
    review(app)
    done = app.approval.expire_due(now)
    assert bool(done) is expired
    want = "expired" if expired else "pending_approval"
    assert statuses(app) == {
        "SHOP": want,
        "MSFT": want,
        "AMD": want,
        "KO": "skipped",
        "ENPH": "skipped",
    }
    assert slot_symbols(app) == ([] if expired else ["AMD", "MSFT", "SHOP"])
    if expired:
        event = app.store.decision_history(done[0].id)[-1]
        assert event.actor == "rebalancerd" and "window closed" in (event.note or "")


def test_expiry_spares_approved_decisions(app: App, clock: FakeClock) -> None:
    shop = review(app)["SHOP"]
    app.approval.approve([shop.id], actor="alice", now=clock.now())
    app.approval.expire_due(datetime(2026, 12, 1, 9, 0, tzinfo=NY))
    assert statuses(app)["SHOP"] == "approved"
    assert statuses(app)["AMD"] == "expired"


def test_the_execution_job_expires_stale_pending_decisions_first(
    app: App, clock: FakeClock
) -> None:
    review(app)
    clock.set(datetime(2026, 12, 1, 9, 30, tzinfo=NY))  # Tuesday: Monday's window is gone
    result = Jobs(app).execute(["dee-bot"])
    assert result.ok and result.decisions == []
    assert {statuses(app)[s] for s in ("SHOP", "MSFT", "AMD")} == {"expired"}


def test_approve_is_refused_when_the_quantity_changed(app: App, clock: FakeClock) -> None:
    amd = review(app)["AMD"]
    sell(app, "AMD", "30")  # 100 -> 70 shares
    [outcome] = app.approval.approve([amd.id], actor="alice", now=clock.now())
    assert not outcome.ok
    assert "AMD quantity changed from 100 to 70" in outcome.message
    assert statuses(app)["AMD"] == "pending_approval"
    assert "AMD" in slot_symbols(app)


def test_approve_is_refused_when_the_position_is_gone(app: App, clock: FakeClock) -> None:
    queued = review(app)
    sell(app, "SHOP", "80")
    outcomes = app.approval.approve_all(["dee-bot"], actor="alice", now=clock.now())
    got = {o.decision.symbol: (o.ok, o.decision.status.value) for o in outcomes}
    assert got == {
        "SHOP": (False, "pending_approval"),
        "MSFT": (True, "approved"),
        "AMD": (True, "approved"),
    }
    [refused] = [o for o in outcomes if not o.ok]
    assert f"decision {queued['SHOP'].id}" in refused.message
    assert "SHOP is no longer held" in refused.message


def test_approving_a_decision_that_is_not_pending_is_refused(app: App, clock: FakeClock) -> None:
    shop = review(app)["SHOP"]
    app.approval.reject([shop.id], actor="bob", now=clock.now())
    [outcome] = app.approval.approve([shop.id], actor="alice", now=clock.now())
    assert not outcome.ok and "is rejected, not pending approval" in outcome.message


def test_approving_after_the_window_closed_expires_instead(app: App) -> None:
    shop = review(app)["SHOP"]
    late = datetime(2026, 11, 30, 17, 0, tzinfo=NY)
    [outcome] = app.approval.approve([shop.id], actor="alice", now=late)
    assert not outcome.ok and "is expired" in outcome.message


def test_an_unknown_id_changes_nothing(app: App, clock: FakeClock) -> None:
    shop = review(app)["SHOP"]
    with pytest.raises(NotFound) as info:
        app.approval.approve([shop.id, 999], actor="alice", now=clock.now())
    assert info.value.exit_code == 2
    assert statuses(app)["SHOP"] == "pending_approval"


def test_ids_outside_the_named_account_are_a_usage_error(app: App, clock: FakeClock) -> None:
    shop = review(app)["SHOP"]
    with pytest.raises(UsageError, match="belongs to account 'dee-bot'"):
        app.approval.reject([shop.id], actor="bob", now=clock.now(), accounts={"shorgan-bot"})
    assert statuses(app)["SHOP"] == "pending_approval"


def test_rejecting_a_filled_exit_is_refused(app: App, clock: FakeClock) -> None:
    shop = review(app)["SHOP"]
    app.approval.approve([shop.id], actor="alice", now=clock.now())
    clock.set(MONDAY_OPEN)
    Jobs(app).execute(["dee-bot"])
    assert statuses(app)["SHOP"] == "filled"
    [outcome] = app.approval.reject([shop.id], actor="bob", now=clock.now())
    assert not outcome.ok and "is filled; only pending or approved" in outcome.message


def test_the_window_ends_at_an_early_close() -> None:
    friday = datetime(2026, 11, 27, 9, 30, tzinfo=NY)  # day after Thanksgiving: 13:00 close
    assert window_end(friday, NY, NyseCalendar()) == datetime.combine(
        date(2026, 11, 27), time(13, 0), tzinfo=NY
    )


def _decision(inputs: dict[str, str]) -> DecisionRecord:
    return DecisionRecord(
        id=1,
        uid="u",
        account="dee-bot",
        source=Source.MANUAL,
        symbol="AMD",
        action=Action.EXIT,
        qty=Decimal(5),
        reasons=(),
        details=(),
        inputs=inputs,
        execute_at=MONDAY_OPEN,
        status=Status.PENDING_APPROVAL,
        created_at=SATURDAY,
        updated_at=SATURDAY,
    )


def _held(qty: str) -> BrokerPosition:
    return BrokerPosition("AMD", Decimal(qty), Decimal(qty), Decimal(100), Decimal(101))


def test_position_changed_compares_with_the_quantity_decided_on() -> None:
    assert position_changed(_decision({}), _held("5")) is None  # nothing recorded to compare
    assert position_changed(_decision({"qty": "5"}), _held("5")) is None
    assert "from 5 to 4" in (position_changed(_decision({"qty": "5"}), _held("4")) or "")
    assert "no longer held" in (position_changed(_decision({}), None) or "")
    assert "no longer held" in (position_changed(_decision({}), _held("0")) or "")


def test_operator_name_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGNAME", "carol")
    assert operator_name() == "carol"
