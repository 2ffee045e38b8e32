"""Fire times straight from the daemon's APScheduler triggers, 2026–2028.

Every answer is an aware datetime in America/New_York; the NYSE holidays below
are NYSE's published closures (see tests/unit/test_calendar.py for the source).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from rebalancerd.adapters.calendar import NyseCalendar
from rebalancerd.daemon.triggers import (
    ExecutionTrigger,
    MarketHoursTrigger,
    ShiftedTrigger,
    TradingDayTrigger,
    WeeklyTrigger,
)

NY = ZoneInfo("America/New_York")
CAL = NyseCalendar()

HOLIDAYS = [
    date(2026, 1, 1), date(2026, 1, 19), date(2026, 2, 16), date(2026, 4, 3),
    date(2026, 5, 25), date(2026, 6, 19), date(2026, 7, 3), date(2026, 9, 7),
    date(2026, 11, 26), date(2026, 12, 25),
    date(2027, 1, 1), date(2027, 1, 18), date(2027, 2, 15), date(2027, 3, 26),
    date(2027, 5, 31), date(2027, 6, 18), date(2027, 7, 5), date(2027, 9, 6),
    date(2027, 11, 25), date(2027, 12, 24),
    date(2028, 1, 17), date(2028, 2, 21), date(2028, 4, 14), date(2028, 5, 29),
    date(2028, 6, 19), date(2028, 7, 4), date(2028, 9, 4), date(2028, 11, 23),
    date(2028, 12, 25),
]  # fmt: skip
GOOD_FRIDAYS = [date(2026, 4, 3), date(2027, 3, 26), date(2028, 4, 14)]
JUNETEENTHS = [date(2026, 6, 19), date(2027, 6, 18), date(2028, 6, 19)]
#: MLK, Presidents, Memorial, Labor Day: the execution moves to Tuesday.
MONDAY_HOLIDAYS = [d for d in HOLIDAYS if d.weekday() == 0]
EARLY_CLOSES = [
    date(2026, 11, 27), date(2026, 12, 24), date(2027, 11, 26),
    date(2028, 7, 3), date(2028, 11, 24),
]  # fmt: skip
#: (spring forward Sunday, fall back Sunday)
DST = [
    (date(2026, 3, 8), date(2026, 11, 1)),
    (date(2027, 3, 14), date(2027, 11, 7)),
    (date(2028, 3, 12), date(2028, 11, 5)),
]


def local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=NY)


def guard() -> TradingDayTrigger:
    return TradingDayTrigger(time(16, 30), CAL, NY)


def execution() -> ExecutionTrigger:
    return ExecutionTrigger(0, time(9, 30), CAL, NY)


def review() -> WeeklyTrigger:
    return WeeklyTrigger(5, time(12, 0), CAL, NY)


def all_fires(trigger: object, start: datetime, end: datetime) -> list[datetime]:
    out: list[datetime] = []
    fire = trigger.get_next_fire_time(None, start)  # type: ignore[attr-defined]
    while fire is not None and fire < end:
        out.append(fire)
        fire = trigger.get_next_fire_time(fire, fire)  # type: ignore[attr-defined]
    return out


def test_holiday_list_matches_the_calendar() -> None:
    for day in HOLIDAYS:
        assert not CAL.is_trading_day(day), day
    for day in EARLY_CLOSES:
        assert CAL.early_close(day) == time(13, 0), day


@pytest.mark.parametrize("day", HOLIDAYS, ids=str)
def test_guard_skips_every_nyse_holiday(day: date) -> None:
    before = local(day, 0, 1)
    fire = guard().get_next_fire_time(None, before)
    assert fire is not None
    assert fire.date() > day
    assert CAL.is_trading_day(fire.date())
    # and nothing in between is a trading day
    d = day
    while d < fire.date():
        assert not CAL.is_trading_day(d)
        d += timedelta(days=1)


@pytest.mark.parametrize("day", GOOD_FRIDAYS + JUNETEENTHS, ids=str)
def test_good_friday_and_juneteenth_have_no_guard(day: date) -> None:
    eve = local(day - timedelta(days=1), 16, 30)
    nxt = guard().get_next_fire_time(eve, eve + timedelta(minutes=1))
    assert nxt is not None and nxt.date() == CAL.next_trading_day(day - timedelta(days=1))
    assert nxt.date() != day


def test_guard_fires_on_every_trading_day_2026_2028_and_nothing_else() -> None:
    fires = all_fires(guard(), local(date(2026, 1, 1), 0), local(date(2029, 1, 1), 0))
    days = [f.date() for f in fires]
    expected = []
    d = date(2026, 1, 1)
    while d.year < 2029:
        if d.weekday() < 5 and d not in HOLIDAYS:
            expected.append(d)
        d += timedelta(days=1)
    assert days == expected
    assert all(f.astimezone(NY).time() == time(16, 30) for f in fires)
    assert len([d for d in days if d.year == 2027]) == 251  # 261 weekdays less 10 holidays


@pytest.mark.parametrize("day", EARLY_CLOSES, ids=str)
def test_guard_on_early_close_days_still_fires_at_1630(day: date) -> None:
    fire = guard().get_next_fire_time(None, local(day, 13, 0))
    assert fire == local(day, 16, 30)


@pytest.mark.parametrize("spring, fall", DST, ids=lambda d: str(d))
def test_wall_clock_times_hold_across_dst(spring: date, fall: date) -> None:
    for sunday, before_utc, after_utc in ((spring, 5, 4), (fall, 4, 5)):
        friday = sunday - timedelta(days=2)
        saturday = sunday - timedelta(days=1)
        monday = sunday + timedelta(days=1)
        fri_fire = guard().get_next_fire_time(None, local(friday, 9))
        assert fri_fire is not None
        mon_fire = guard().get_next_fire_time(fri_fire, fri_fire + timedelta(seconds=1))
        assert mon_fire is not None
        assert fri_fire.astimezone(UTC).hour == 16 + before_utc
        assert mon_fire.date() == monday or not CAL.is_trading_day(monday)
        assert mon_fire.astimezone(NY).time() == time(16, 30)
        assert mon_fire.astimezone(UTC).hour == 16 + after_utc
        sat = review().get_next_fire_time(None, local(saturday, 0))
        assert sat == local(saturday, 12)
        assert sat is not None and sat.astimezone(UTC).hour == 12 + before_utc
        nxt = review().get_next_fire_time(sat, sat + timedelta(seconds=1))
        assert nxt == local(saturday + timedelta(days=7), 12)
        assert nxt is not None and nxt.astimezone(UTC).hour == 12 + after_utc
        elapsed = nxt.astimezone(UTC) - sat.astimezone(UTC)
        assert elapsed == timedelta(days=7, hours=after_utc - before_utc)


def test_dst_night_has_exactly_one_fire() -> None:
    # A 02:30 daily time does not exist on spring-forward night and happens twice
    # on fall-back night; the trigger gives one fire per day either way.
    nightly = WeeklyTrigger(6, time(1, 30), CAL, NY)
    fires = all_fires(nightly, local(date(2026, 10, 30), 0), local(date(2026, 11, 3), 0))
    assert fires == [local(date(2026, 11, 1), 1, 30)]
    gap = WeeklyTrigger(6, time(2, 30), CAL, NY)
    fires = all_fires(gap, local(date(2026, 3, 6), 0), local(date(2026, 3, 10), 0))
    assert len(fires) == 1 and fires[0].astimezone(NY).time() == time(3, 30)


@pytest.mark.parametrize("holiday", MONDAY_HOLIDAYS, ids=str)
def test_execution_moves_to_tuesday_after_a_monday_holiday(holiday: date) -> None:
    fire = execution().get_next_fire_time(None, local(holiday - timedelta(days=2), 12))
    assert fire == local(holiday + timedelta(days=1), 9, 30)


def test_monday_holidays_cover_mlk_presidents_memorial_labor() -> None:
    months = sorted({d.month for d in MONDAY_HOLIDAYS})
    assert {1, 2, 5, 9} <= set(months)


def test_execution_once_a_week_2026_2028() -> None:
    fires = all_fires(execution(), local(date(2026, 1, 1), 0), local(date(2029, 1, 1), 0))
    weeks = [f.date() - timedelta(days=f.date().weekday()) for f in fires]
    assert len(weeks) == len(set(weeks))
    assert len(fires) == 156  # the weeks of Mondays 2026-01-05 .. 2028-12-25
    for f in fires:
        assert CAL.is_trading_day(f.date())
        assert f.astimezone(NY).time() == time(9, 30)
        monday = f.date() - timedelta(days=f.date().weekday())
        assert all(not CAL.is_trading_day(monday + timedelta(days=i)) for i in range(f.weekday()))


def test_review_fires_every_saturday_even_on_holiday_weekends() -> None:
    fires = all_fires(review(), local(date(2026, 1, 1), 0), local(date(2029, 1, 1), 0))
    assert all(f.weekday() == 5 and f.astimezone(NY).time() == time(12) for f in fires)
    assert len(fires) == 157  # Saturdays 2026-01-03 .. 2028-12-30
    # Saturday 2027-01-01 is New Year's Day: the review still runs.
    assert local(date(2027, 1, 2), 12) in fires


def test_review_can_be_moved_to_1155() -> None:
    early = WeeklyTrigger(5, time(11, 55), CAL, NY)
    assert early.get_next_fire_time(None, local(date(2026, 11, 24), 9)) == local(
        date(2026, 11, 28), 11, 55
    )


def test_thanksgiving_2026_week() -> None:
    wed = local(date(2026, 11, 25), 16, 30)
    assert guard().get_next_fire_time(wed, wed + timedelta(seconds=1)) == local(
        date(2026, 11, 27), 16, 30
    )
    hours = MarketHoursTrigger(timedelta(minutes=5), CAL, NY)
    fires = hours.fire_times_on(date(2026, 11, 27))
    assert fires[0] == local(date(2026, 11, 27), 9, 35)
    assert fires[-1] == local(date(2026, 11, 27), 12, 55)
    assert hours.fire_times_on(date(2026, 11, 26)) == []
    assert len(hours.fire_times_on(date(2026, 11, 30))) == 77


def test_latest_at_or_before_and_previous_fire_semantics() -> None:
    trig = execution()
    at = local(date(2027, 2, 17), 11)  # Wednesday after Presidents' Day
    assert trig.latest_at_or_before(at) == local(date(2027, 2, 16), 9, 30)
    assert trig.latest_at_or_before(local(date(2027, 2, 16), 9, 30)) == local(
        date(2027, 2, 16), 9, 30
    )
    # catching up: with a previous fire time, the next one after it is returned
    prev = local(date(2027, 2, 8), 9, 30)
    assert trig.get_next_fire_time(prev, at) == local(date(2027, 2, 16), 9, 30)


def test_shifted_trigger_moves_virtual_times_to_real_time() -> None:
    offset = timedelta(days=3, hours=2)
    shifted = ShiftedTrigger(guard(), offset)
    real_now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    fire = shifted.get_next_fire_time(None, real_now)
    assert fire is not None
    virtual = fire + offset
    assert virtual == guard().get_next_fire_time(None, real_now + offset)
    assert virtual.astimezone(NY).time() == time(16, 30)


def test_extra_closures_are_skipped() -> None:
    closed = NyseCalendar([date(2026, 12, 2)])
    trig = TradingDayTrigger(time(16, 30), closed, NY)
    tue = local(date(2026, 12, 1), 16, 30)
    assert trig.get_next_fire_time(tue, tue + timedelta(seconds=1)) == local(
        date(2026, 12, 3), 16, 30
    )


def test_upcoming_around_thanksgiving_2026_names_the_holiday_and_early_close() -> None:
    from rebalancerd.config.settings import Settings
    from rebalancerd.daemon.plan import build_triggers, upcoming

    entries = upcoming(build_triggers(Settings(), CAL), local(date(2026, 11, 25), 10), 4)
    guards = [(e.day, e.at, e.note) for e in entries if e.job == "daily_guard"]
    assert guards == [
        (date(2026, 11, 25), local(date(2026, 11, 25), 16, 30), None),
        (date(2026, 11, 26), None, "skipped: Thanksgiving Day"),
        (
            date(2026, 11, 27),
            local(date(2026, 11, 27), 16, 30),
            "early close 13:00: runs on the 13:00 closing prices",
        ),
    ]
    assert [e.at for e in entries if e.job == "weekly_review"] == [local(date(2026, 11, 28), 12)]


def test_upcoming_presidents_day_2027_moves_the_execution() -> None:
    from rebalancerd.config.settings import Settings
    from rebalancerd.daemon.plan import build_triggers, upcoming

    entries = upcoming(build_triggers(Settings(), CAL), local(date(2027, 2, 12), 17), 7)
    execution = [e for e in entries if e.job == "execution"]
    assert [(e.at, e.note) for e in execution] == [
        (local(date(2027, 2, 16), 9, 30), "moved from Mon 2027-02-15: Washington's Birthday")
    ]
    skipped = [e.note for e in entries if e.job == "daily_guard" and e.at is None]
    assert skipped == ["skipped: Washington's Birthday"]
