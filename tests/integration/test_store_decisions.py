"""SqlStore decisions, history and weekly slots on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from rebalancerd.adapters.db.store import SqlStore
from rebalancerd.domain.model import Action, SkipReason, Source, Status
from rebalancerd.errors import InvalidTransition, NotFound
from rebalancerd.ports import CapClaim, DecisionFilter, NewDecision, PositionRecord

from .conftest import T0, WEEK

MakeDecision = Callable[..., NewDecision]
NY = ZoneInfo("America/New_York")
CAP2 = CapClaim(WEEK, 2)


def _position(symbol: str = "AAPL", levels: frozenset[str] = frozenset()) -> PositionRecord:
    return PositionRecord(
        account="paper",
        symbol=symbol,
        opened_at=T0 - timedelta(days=40),
        opened_at_source="fill_history",
        avg_entry_price=Decimal("100.25"),
        profit_levels_taken=levels,
    )


# ----------------------------------------------------------------- round trip


def test_decision_round_trip_is_exact(store: SqlStore, make_decision: MakeDecision) -> None:
    execute_at = datetime(2024, 11, 4, 9, 30, tzinfo=NY)
    new = make_decision(
        action=Action.TRIM,
        qty=Decimal("123456789012345.123456789"),
        fraction=Decimal("0.3333"),
        reasons=["profit_take", "concentration"],
        details=["plpc +25%", "weight 31%"],
        inputs={"price": "125.10", "plpc": "0.2479"},
        execute_at=execute_at,
        profit_level="weekly:20",
        actor="alice",
    )

    record = store.record_decision(new, None)
    again = store.get_decision(record.id)

    assert again == record
    assert record.qty == Decimal("123456789012345.123456789")
    assert record.fraction == Decimal("0.3333")
    assert str(record.fraction) == "0.3333"
    assert record.execute_at == execute_at
    assert record.execute_at.tzinfo is UTC
    assert record.created_at == new.created_at and record.created_at.tzinfo is UTC
    assert record.updated_at == new.created_at
    assert record.action is Action.TRIM and record.source is Source.WEEKLY_REVIEW
    assert record.status is Status.APPROVED and record.skip_reason is None
    assert record.reasons == ("profit_take", "concentration")
    assert record.details == ("plpc +25%", "weight 31%")
    assert dict(record.inputs) == {"price": "125.10", "plpc": "0.2479"}
    assert record.profit_level == "weekly:20"
    assert len(record.uid) == 32 and record.slot_week is None


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (Decimal("10"), "10"),
        (Decimal("1.50"), "1.5"),
        (Decimal("0.000000001"), "0.000000001"),
        (Decimal("1E+3"), "1000"),
        (Decimal("2.1234567894"), "2.123456789"),  # rounded to 9 places on both engines
        (Decimal("-3.25"), "-3.25"),
    ],
)
def test_decimals_read_back_the_same_on_both_engines(
    store: SqlStore, make_decision: MakeDecision, given: Decimal, stored: str
) -> None:
    record = store.record_decision(make_decision(qty=given), None)
    qty = store.get_decision(record.id).qty
    assert format(qty, "f") == stored and qty.as_tuple().exponent <= 0


def test_naive_datetime_is_refused(store: SqlStore, make_decision: MakeDecision) -> None:
    with pytest.raises(ValueError, match="naive"):
        store.record_decision(make_decision(created_at=datetime(2024, 11, 2, 15, 0)), None)


def test_unknown_decision_is_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        store.get_decision(999)
    with pytest.raises(NotFound):
        store.transition(999, Status.APPROVED, at=T0)


def test_history_starts_with_proposed(store: SqlStore, make_decision: MakeDecision) -> None:
    record = store.record_decision(make_decision(status=Status.PENDING_APPROVAL, actor="cli"), None)

    history = store.decision_history(record.id)

    assert [e.status for e in history] == [Status.PROPOSED, Status.PENDING_APPROVAL]
    assert {e.actor for e in history} == {"cli"}
    assert all(e.at == record.created_at and e.at.tzinfo is UTC for e in history)


def test_a_proposed_decision_has_one_event(store: SqlStore, make_decision: MakeDecision) -> None:
    record = store.record_decision(make_decision(status=Status.PROPOSED), CAP2)
    assert [e.status for e in store.decision_history(record.id)] == [Status.PROPOSED]
    assert record.slot_week is None  # proposed holds no slot


def test_a_decision_cannot_start_past_the_table(
    store: SqlStore, make_decision: MakeDecision
) -> None:
    with pytest.raises(InvalidTransition, match="filled"):
        store.record_decision(make_decision(status=Status.FILLED), None)


# ----------------------------------------------------------------- transitions


def test_full_path_to_filled(store: SqlStore, make_decision: MakeDecision) -> None:
    d = store.record_decision(make_decision(status=Status.PENDING_APPROVAL), CAP2)
    for step, status in enumerate((Status.APPROVED, Status.SUBMITTED, Status.FILLED), start=1):
        d = store.transition(d.id, status, at=T0 + timedelta(minutes=step), actor="ops", note="n")

    assert d.status is Status.FILLED
    assert d.updated_at == T0 + timedelta(minutes=3)
    assert d.slot_week == WEEK  # a filled exit keeps its slot
    history = store.decision_history(d.id)
    assert [e.status for e in history] == [
        Status.PROPOSED,
        Status.PENDING_APPROVAL,
        Status.APPROVED,
        Status.SUBMITTED,
        Status.FILLED,
    ]
    assert history[-1].actor == "ops" and history[-1].note == "n"


def test_invalid_transition_is_refused_and_changes_nothing(
    store: SqlStore, make_decision: MakeDecision
) -> None:
    d = store.record_decision(make_decision(status=Status.APPROVED), CAP2)
    store.transition(d.id, Status.SUBMITTED, at=T0)
    store.transition(d.id, Status.FILLED, at=T0)

    with pytest.raises(InvalidTransition, match=r"filled.*approved"):
        store.transition(d.id, Status.APPROVED, at=T0)

    assert store.get_decision(d.id).status is Status.FILLED
    assert len(store.decision_history(d.id)) == 4
    assert len(store.slots("paper", WEEK)) == 1


def test_skip_reason_is_recorded_on_transition(
    store: SqlStore, make_decision: MakeDecision
) -> None:
    d = store.record_decision(make_decision(status=Status.APPROVED), None)
    d = store.transition(d.id, Status.SKIPPED, at=T0, skip_reason=SkipReason.INSUFFICIENT_CASH)
    assert d.status is Status.SKIPPED and d.skip_reason is SkipReason.INSUFFICIENT_CASH


# ----------------------------------------------------------------- weekly cap


def test_cap_skips_beyond_the_limit(store: SqlStore, make_decision: MakeDecision) -> None:
    held = [store.record_decision(make_decision(symbol=s), CAP2) for s in ("A", "B")]
    third = store.record_decision(make_decision(symbol="C", profit_level="weekly:20"), CAP2)

    assert [d.slot_week for d in held] == [WEEK, WEEK]
    assert third.status is Status.SKIPPED
    assert third.skip_reason is SkipReason.WEEKLY_CAP_REACHED
    assert third.slot_week is None
    history = store.decision_history(third.id)
    assert [e.status for e in history] == [Status.PROPOSED, Status.SKIPPED]
    assert history[-1].note is not None and "cap of 2" in history[-1].note
    slots = store.slots("paper", WEEK)
    assert [(s.slot_no, s.symbol, s.decision_id) for s in slots] == [
        (1, "A", held[0].id),
        (2, "B", held[1].id),
    ]


def test_weeks_and_accounts_have_their_own_slots(
    store: SqlStore, make_decision: MakeDecision
) -> None:
    one = CapClaim(WEEK, 1)
    next_week = CapClaim(WEEK + timedelta(days=7), 1)
    a = store.record_decision(make_decision(symbol="A"), one)
    b = store.record_decision(make_decision(symbol="B"), next_week)
    c = store.record_decision(make_decision(symbol="C", account="live"), one)
    assert [d.status for d in (a, b, c)] == [Status.APPROVED] * 3
    assert b.slot_week == next_week.week_start
    assert store.slots("live", WEEK)[0].account == "live"


@pytest.mark.parametrize("status", [Status.DRY_RUN, Status.SKIPPED, Status.PROPOSED])
def test_only_slot_holding_statuses_claim(
    store: SqlStore, make_decision: MakeDecision, status: Status
) -> None:
    store.record_decision(make_decision(status=status, skip_reason=None), CapClaim(WEEK, 0))
    assert store.slots("paper", WEEK) == []


def test_zero_cap_skips_everything(store: SqlStore, make_decision: MakeDecision) -> None:
    d = store.record_decision(make_decision(), CapClaim(WEEK, 0))
    assert d.skip_reason is SkipReason.WEEKLY_CAP_REACHED


@pytest.mark.parametrize(
    ("path", "end"),
    [
        ((), Status.REJECTED),
        ((), Status.CANCELLED),
        ((), Status.EXPIRED),
        ((Status.APPROVED,), Status.SKIPPED),
        ((Status.APPROVED, Status.SUBMITTED), Status.REJECTED),
    ],
)
def test_releasing_ends_free_the_slot_and_rearm_the_level(
    store: SqlStore, make_decision: MakeDecision, path: tuple[Status, ...], end: Status
) -> None:
    store.open_position_record(_position())
    first = store.record_decision(
        make_decision(status=Status.PENDING_APPROVAL, profit_level="weekly:20"), CAP2
    )
    second = store.record_decision(make_decision(symbol="MSFT"), CAP2)
    assert store.position_records("paper")["AAPL"].profit_levels_taken == {"weekly:20"}

    for status in path:
        store.transition(first.id, status, at=T0)
    released = store.transition(first.id, end, at=T0)

    assert released.slot_week is None
    assert [s.decision_id for s in store.slots("paper", WEEK)] == [second.id]
    assert store.position_records("paper")["AAPL"].profit_levels_taken == frozenset()
    reused = store.record_decision(make_decision(symbol="NVDA"), CAP2)
    assert reused.status is Status.APPROVED
    assert [s.slot_no for s in store.slots("paper", WEEK)] == [1, 2]
    assert store.slots("paper", WEEK)[0].decision_id == reused.id  # the lowest free number


def test_profit_level_is_not_marked_by_dry_runs_or_skips(
    store: SqlStore, make_decision: MakeDecision
) -> None:
    store.open_position_record(_position(levels=frozenset({"daily:10"})))
    store.record_decision(make_decision(status=Status.DRY_RUN, profit_level="weekly:20"), CAP2)
    store.record_decision(
        make_decision(status=Status.SKIPPED, skip_reason=SkipReason.DISABLED, profit_level="w:1"),
        None,
    )
    capped = CapClaim(WEEK, 0)
    store.record_decision(make_decision(profit_level="weekly:30"), capped)
    assert store.position_records("paper")["AAPL"].profit_levels_taken == {"daily:10"}

    store.record_decision(make_decision(profit_level="weekly:20"), CAP2)
    assert store.position_records("paper")["AAPL"].profit_levels_taken == {
        "daily:10",
        "weekly:20",
    }


def test_profit_level_without_position_record_is_fine(
    store: SqlStore, make_decision: MakeDecision
) -> None:
    d = store.record_decision(make_decision(profit_level="weekly:20"), CAP2)
    store.transition(d.id, Status.CANCELLED, at=T0)
    assert store.position_records("paper") == {}


# ----------------------------------------------------------------- audit trail


def test_decision_events_are_append_only_in_the_database(
    store: SqlStore, make_decision: MakeDecision
) -> None:
    d = store.record_decision(make_decision(), None)
    statements = ["UPDATE decision_events SET note = 'forged'", "DELETE FROM decision_events"]
    if store.engine.dialect.name == "postgresql":
        statements.append("TRUNCATE decision_events")
    for sql in statements:
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.execute(text(sql))
    assert [e.note for e in store.decision_history(d.id)] == [None, None]


# ----------------------------------------------------------------- queries


def test_open_decision_symbols(store: SqlStore, make_decision: MakeDecision) -> None:
    store.record_decision(make_decision(symbol="EXIT1"), None)
    store.record_decision(
        make_decision(symbol="TRIM1", action=Action.TRIM, status=Status.PROPOSED), None
    )
    store.record_decision(make_decision(symbol="BUY1", action=Action.BUY), None)
    store.record_decision(make_decision(symbol="DRY1", status=Status.DRY_RUN), None)
    store.record_decision(make_decision(symbol="OTHER", account="live"), None)
    done = store.record_decision(make_decision(symbol="DONE"), None)
    store.transition(done.id, Status.SUBMITTED, at=T0)
    sub = store.record_decision(make_decision(symbol="SUB"), None)
    store.transition(sub.id, Status.SUBMITTED, at=T0)
    store.transition(done.id, Status.FILLED, at=T0)

    assert store.open_decision_symbols("paper") == {"EXIT1", "TRIM1", "BUY1", "SUB"}
    assert store.open_decision_symbols("nobody") == set()


def test_list_decisions_filters_and_order(store: SqlStore, make_decision: MakeDecision) -> None:
    base = datetime(2024, 11, 1, tzinfo=UTC)
    ids = [
        store.record_decision(
            make_decision(
                symbol=sym,
                account=acct,
                source=src,
                status=st,
                created_at=base + timedelta(days=i),
            ),
            None,
        ).id
        for i, (sym, acct, src, st) in enumerate(
            [
                ("A", "paper", Source.WEEKLY_REVIEW, Status.APPROVED),
                ("B", "paper", Source.DAILY_GUARD, Status.PENDING_APPROVAL),
                ("A", "live", Source.WEEKLY_REVIEW, Status.APPROVED),
                ("C", "paper", Source.WEEKLY_REVIEW, Status.DRY_RUN),
            ]
        )
    ]

    def listed(**kw: object) -> list[int]:
        return [d.id for d in store.list_decisions(DecisionFilter(**kw))]  # type: ignore[arg-type]

    assert listed() == ids
    assert listed(account="paper") == [ids[0], ids[1], ids[3]]
    assert listed(statuses=frozenset({Status.APPROVED})) == [ids[0], ids[2]]
    assert listed(symbol="A") == [ids[0], ids[2]]
    assert listed(source=Source.DAILY_GUARD) == [ids[1]]
    assert listed(since=base + timedelta(days=2)) == [ids[2], ids[3]]
    assert listed(since=(base + timedelta(days=2)).astimezone(ZoneInfo("Asia/Tokyo"))) == [
        ids[2],
        ids[3],
    ]
    assert listed(ids=frozenset({ids[3], ids[1]})) == [ids[1], ids[3]]
    assert listed(limit=2) == [ids[2], ids[3]]  # the most recent, still in id order
    assert listed(account="paper", statuses=frozenset({Status.DRY_RUN}), limit=5) == [ids[3]]


def test_slots_of_an_empty_week(store: SqlStore) -> None:
    assert store.slots("paper", date(2030, 1, 7)) == []
