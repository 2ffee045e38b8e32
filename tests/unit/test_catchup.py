"""Catch-up at start: what the daemon runs or records as missed after being down.

Fixed ``now`` values, the real NYSE calendar and an in-memory run ledger; the
job runner records a run exactly as :class:`Jobs` would, so running the same
plan twice shows that nothing executes twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from rebalancerd.adapters.calendar import NyseCalendar
from rebalancerd.config.settings import Settings
from rebalancerd.daemon.catchup import plan_catchup, run_catchup
from rebalancerd.daemon.plan import (
    EXECUTION,
    GUARD,
    REVIEW,
    Triggers,
    build_triggers,
    catchup_deadline,
)
from rebalancerd.ports import JobRun

NY = ZoneInfo("America/New_York")
ACCOUNTS = ["dee-bot", "shorgan-bot"]


def local(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=NY)


class FakeLedger:
    """The run-ledger part of the Store port, in memory."""

    def __init__(self) -> None:
        self.runs: list[JobRun] = []

    def add(self, job: str, account: str, scheduled_at: datetime, outcome: str) -> None:
        at = datetime(2026, 1, 1, tzinfo=UTC)
        self.runs.append(
            JobRun(len(self.runs) + 1, job, account, scheduled_at, at, at, outcome, None)
        )

    def runs_scheduled_at(self, job: str, scheduled_at: datetime) -> list[JobRun]:
        return [r for r in self.runs if r.job == job and r.scheduled_at == scheduled_at]

    def record_missed(
        self, job: str, account: str | None, *, scheduled_at: datetime, at: datetime, note: str
    ) -> int:
        assert account is not None
        self.add(job, account, scheduled_at, "missed")
        return len(self.runs)

    def outcomes(self, job: str) -> list[tuple[str, datetime | None, str]]:
        return [(r.account or "", r.scheduled_at, r.outcome) for r in self.runs if r.job == job]


class Runner:
    """Runs a job the way the daemon does: one recorded run per account."""

    def __init__(self, ledger: FakeLedger) -> None:
        self.ledger = ledger
        self.calls: list[tuple[str, tuple[str, ...], datetime]] = []

    def __call__(self, job: str, accounts: list[str], scheduled_at: datetime) -> None:
        self.calls.append((job, tuple(accounts), scheduled_at))
        for account in accounts:
            self.ledger.add(job, account, scheduled_at, "succeeded")


def triggers() -> Triggers:
    return build_triggers(Settings(), NyseCalendar())


def start(now: datetime, ledger: FakeLedger) -> Runner:
    runner = Runner(ledger)
    steps = plan_catchup(triggers(), ledger, ACCOUNTS, now)
    run_catchup(steps, ledger, runner, now)
    return runner


def test_down_over_monday_open_started_at_1100_executes_once() -> None:
    ledger = FakeLedger()
    runner = start(local(2026, 11, 30, 11), ledger)
    monday_open = local(2026, 11, 30, 9, 30)
    assert (EXECUTION, tuple(ACCOUNTS), monday_open) in runner.calls
    # restarted a few minutes later: the execution is on record, nothing runs again
    again = start(local(2026, 11, 30, 11, 5), ledger)
    assert [c for c in again.calls if c[0] == EXECUTION] == []
    assert ledger.outcomes(EXECUTION) == [(a, monday_open, "succeeded") for a in ACCOUNTS]


def test_down_over_monday_started_tuesday_records_missed_and_executes_nothing() -> None:
    ledger = FakeLedger()
    runner = start(local(2026, 12, 1, 10), ledger)
    assert [c for c in runner.calls if c[0] == EXECUTION] == []
    monday_open = local(2026, 11, 30, 9, 30)
    assert ledger.outcomes(EXECUTION) == [(a, monday_open, "missed") for a in ACCOUNTS]
    # Monday's 16:30 guard feeds Tuesday's open, which has passed: missed too.
    assert {o for *_, o in ledger.outcomes(GUARD)} == {"missed"}
    # a second start adds nothing: the missed fire times are on record
    count = len(ledger.runs)
    again = start(local(2026, 12, 1, 10, 30), ledger)
    assert again.calls == [] and len(ledger.runs) == count


def test_review_missed_on_saturday_runs_on_sunday() -> None:
    ledger = FakeLedger()
    runner = start(local(2026, 11, 29, 9), ledger)
    saturday = local(2026, 11, 28, 12)
    assert (REVIEW, tuple(ACCOUNTS), saturday) in runner.calls


def test_review_is_missed_once_its_execution_has_started() -> None:
    ledger = FakeLedger()
    runner = start(local(2026, 11, 30, 9, 45), ledger)
    assert [c[0] for c in runner.calls] == [EXECUTION]
    assert {o for *_, o in ledger.outcomes(REVIEW)} == {"missed"}


def test_presidents_day_execution_caught_up_on_tuesday() -> None:
    ledger = FakeLedger()
    runner = start(local(2027, 2, 16, 11), ledger)
    assert (EXECUTION, tuple(ACCOUNTS), local(2027, 2, 16, 9, 30)) in runner.calls


def test_guard_of_an_early_close_friday_runs_over_the_weekend() -> None:
    ledger = FakeLedger()
    ledger.add(REVIEW, "dee-bot", local(2026, 11, 21, 12), "succeeded")
    runner = start(local(2026, 11, 28, 8), ledger)
    friday = local(2026, 11, 27, 16, 30)
    assert (GUARD, tuple(ACCOUNTS), friday) in runner.calls


def test_only_accounts_without_a_finished_run_are_caught_up() -> None:
    ledger = FakeLedger()
    monday_open = local(2026, 11, 30, 9, 30)
    ledger.add(EXECUTION, "dee-bot", monday_open, "succeeded")
    runner = start(local(2026, 11, 30, 11), ledger)
    assert (EXECUTION, ("shorgan-bot",), monday_open) in runner.calls


@pytest.mark.parametrize("outcome", ["failed", "running"])
def test_a_failed_or_interrupted_run_is_retried_inside_its_window(outcome: str) -> None:
    ledger = FakeLedger()
    monday_open = local(2026, 11, 30, 9, 30)
    ledger.add(EXECUTION, "dee-bot", monday_open, outcome)
    ledger.add(EXECUTION, "shorgan-bot", monday_open, "succeeded")
    runner = start(local(2026, 11, 30, 11), ledger)
    assert (EXECUTION, ("dee-bot",), monday_open) in runner.calls


def test_steps_run_oldest_first() -> None:
    ledger = FakeLedger()
    runner = start(local(2026, 11, 29, 9), ledger)  # Sunday: Friday's guard, Saturday's review
    assert [c[0] for c in runner.calls] == [GUARD, REVIEW]


def test_catchup_windows() -> None:
    trig = triggers()
    saturday = local(2026, 11, 28, 12)
    assert catchup_deadline(REVIEW, saturday, trig) == local(2026, 11, 30, 9, 30)
    feb = local(2027, 2, 13, 12)  # Presidents' Day weekend: the execution is Tuesday
    assert catchup_deadline(REVIEW, feb, trig) == local(2027, 2, 16, 9, 30)
    wednesday = local(2026, 11, 25, 16, 30)  # Thanksgiving: next open is Friday
    assert catchup_deadline(GUARD, wednesday, trig) == local(2026, 11, 27, 9, 30)
    dec24 = local(2026, 12, 24, 9, 30)  # an execution moved onto an early-close day
    assert catchup_deadline(EXECUTION, dec24, trig).time() == time(13, 0)
    assert catchup_deadline(EXECUTION, local(2026, 11, 30, 9, 30), trig) == local(2026, 11, 30, 16)
