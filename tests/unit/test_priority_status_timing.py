"""Cap priority order, the status table and market-local time helpers."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest

from rebalancerd.domain.caps import SimulatedSlots, takes_slot
from rebalancerd.domain.model import Action, Block, Position, RuleBlock, Source, Status
from rebalancerd.domain.rules import evaluate_position
from rebalancerd.domain.status import (
    FINAL,
    OPEN,
    RELEASING,
    SLOT_HOLDING,
    TRANSITIONS,
    can_transition,
)
from rebalancerd.domain.timing import (
    market_date,
    next_execution,
    next_market_open,
    slot_week,
    week_start,
)

NY = ZoneInfo("America/New_York")
TODAY = date(2026, 11, 28)
EQUITY = D("100000")


def _pos(symbol: str, qty: str, price: str, opened: date = date(2026, 11, 20)) -> Position:
    return Position(symbol, D(qty), D("100"), D(price), opened_at=opened)


RB = RuleBlock(
    block=Block.WEEKLY,
    profit_take_pct=D("0.2"),
    loss_cut_pct=D("0.1"),
    stale_days=10,
    stale_move_pct=D("0.05"),
    max_position_pct=D("0.15"),
)


def test_priority_order_across_and_within_classes() -> None:
    positions = [
        _pos("STALE_OLD", "10", "101", date(2026, 9, 1)),
        _pos("STALE_NEW", "10", "101", date(2026, 11, 1)),
        _pos("GAIN_SMALL", "10", "121"),
        _pos("GAIN_BIG", "10", "140"),
        _pos("CONC_BIG", "300", "100"),
        _pos("CONC_SMALL", "200", "100"),
        _pos("LOSS_SMALL", "10", "89"),
        _pos("LOSS_BIG", "10", "70"),
    ]
    proposals = [evaluate_position(p, RB, EQUITY, TODAY) for p in positions]
    ordered = sorted((p for p in proposals if p), key=lambda p: p.priority)
    assert [p.symbol for p in ordered] == [
        "LOSS_BIG",
        "LOSS_SMALL",
        "CONC_BIG",
        "CONC_SMALL",
        "GAIN_BIG",
        "GAIN_SMALL",
        "STALE_OLD",
        "STALE_NEW",
    ]


def test_priority_ties_break_on_symbol() -> None:
    a = evaluate_position(_pos("BBB", "10", "130"), RB, EQUITY, TODAY)
    b = evaluate_position(_pos("AAA", "10", "130"), RB, EQUITY, TODAY)
    assert a and b and sorted([a, b], key=lambda p: p.priority)[0].symbol == "AAA"


def test_position_ranks_by_its_highest_class() -> None:
    # A big winner that is also over-concentrated ranks as concentration.
    both = evaluate_position(_pos("ZZZ", "200", "130"), RB, EQUITY, TODAY)
    loser = evaluate_position(_pos("AAA", "10", "80"), RB, EQUITY, TODAY)
    gain = evaluate_position(_pos("BBB", "10", "150"), RB, EQUITY, TODAY)
    ordered = sorted([gain, both, loser], key=lambda p: p.priority)  # type: ignore[arg-type, return-value]
    assert [p.symbol for p in ordered] == ["AAA", "ZZZ", "BBB"]  # type: ignore[union-attr]


# --------------------------------------------------------------------- status

ALLOWED = {(a, b) for a, nxt in TRANSITIONS.items() for b in nxt}


@pytest.mark.parametrize("current", list(Status))
@pytest.mark.parametrize("new", list(Status))
def test_transition_table(current: Status, new: Status) -> None:
    assert can_transition(current, new) is ((current, new) in ALLOWED)


def test_status_sets() -> None:
    assert Status.FILLED in FINAL and Status.SUBMITTED not in FINAL
    assert not (SLOT_HOLDING & RELEASING)
    assert {Status.PROPOSED} | SLOT_HOLDING >= OPEN
    # no way back from a final status, and nothing returns to approved once submitted
    assert all(not TRANSITIONS[s] for s in FINAL)
    assert not can_transition(Status.SUBMITTED, Status.APPROVED)
    assert not can_transition(Status.FILLED, Status.SUBMITTED)


def test_caps_helpers() -> None:
    assert takes_slot(Action.EXIT, Source.WEEKLY_REVIEW, [Source.WEEKLY_REVIEW])
    assert not takes_slot(Action.EXIT, Source.DAILY_GUARD, [Source.WEEKLY_REVIEW])
    assert not takes_slot(Action.BUY, Source.WEEKLY_REVIEW, [Source.WEEKLY_REVIEW])
    slots = SimulatedSlots(cap=3, held=1)
    assert [slots.take() for _ in range(4)] == [True, True, False, False]
    assert SimulatedSlots(cap=2, held=5).free == 0


# --------------------------------------------------------------------- timing


class Weekdays:
    """A calendar with weekends and an explicit holiday list."""

    def __init__(self, *holidays: date):
        self.holidays = set(holidays)

    def is_trading_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.holidays


def test_market_date_is_local_not_utc() -> None:
    # 23:00 New York on Friday is already Saturday in UTC.
    late = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)
    assert market_date(late, NY) == date(2026, 11, 27)
    with pytest.raises(ValueError):
        market_date(datetime(2026, 11, 28), NY)


def test_week_start_monday() -> None:
    assert week_start(date(2026, 11, 29)) == date(2026, 11, 23)  # Sunday
    assert week_start(date(2026, 11, 30)) == date(2026, 11, 30)


@pytest.mark.parametrize(
    ("now_local", "holidays", "expected_local"),
    [
        # Saturday review → next Monday 09:30
        (datetime(2026, 11, 28, 12, 0), (), datetime(2026, 11, 30, 9, 30)),
        # Monday before the open → today
        (datetime(2026, 11, 30, 8, 0), (), datetime(2026, 11, 30, 9, 30)),
        # Monday after the open → next week
        (datetime(2026, 11, 30, 9, 31), (), datetime(2026, 12, 7, 9, 30)),
        # Monday holiday (Presidents' Day 2027-02-15) → Tuesday
        (datetime(2027, 2, 13, 12, 0), (date(2027, 2, 15),), datetime(2027, 2, 16, 9, 30)),
    ],
)
def test_next_execution(
    now_local: datetime, holidays: tuple[date, ...], expected_local: datetime
) -> None:
    now = now_local.replace(tzinfo=NY)
    result = next_execution(now, NY, Weekdays(*holidays))
    assert result == expected_local.replace(tzinfo=NY)
    assert result.utcoffset() is not None


def test_next_execution_across_dst() -> None:
    # Saturday 2026-10-31 (EDT) → Monday 2026-11-02 09:30 EST = 14:30 UTC
    now = datetime(2026, 10, 31, 12, 0, tzinfo=NY)
    result = next_execution(now, NY, Weekdays())
    assert result.astimezone(UTC) == datetime(2026, 11, 2, 14, 30, tzinfo=UTC)


def test_next_execution_custom_time() -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=NY)
    assert next_execution(now, NY, Weekdays(), weekday=1, at=time(10, 0)) == datetime(
        2026, 12, 1, 10, 0, tzinfo=NY
    )


def test_next_market_open_after_guard_and_holiday() -> None:
    thursday_guard = datetime(2026, 11, 25, 16, 30, tzinfo=NY)  # Wednesday before Thanksgiving
    assert next_market_open(thursday_guard, NY, Weekdays(date(2026, 11, 26))) == datetime(
        2026, 11, 27, 9, 30, tzinfo=NY
    )
    friday = datetime(2026, 11, 27, 16, 30, tzinfo=NY)
    assert next_market_open(friday, NY, Weekdays()) == datetime(2026, 11, 30, 9, 30, tzinfo=NY)


def test_slot_week_is_execution_week() -> None:
    assert slot_week(datetime(2026, 11, 30, 9, 30, tzinfo=NY), NY) == date(2026, 11, 30)
