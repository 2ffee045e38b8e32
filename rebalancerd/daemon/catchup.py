"""Catch-up at start: fire times the daemon slept through (SPEC §9).

Policy, per job (review, guard, execution), logged line by line: take the job's
latest fire time at or before now. Accounts with a recorded run for it (any
outcome) are done. For the others, if now is still inside the job's window
(review: until the execution it feeds; guard: until the next open; execution:
until that day's close) the job runs now for them, once; otherwise each is
recorded as ``missed`` so the gap is visible and is not reconsidered at the
next start. Only the latest fire time counts: older ones were either handled
by an earlier start or their windows have closed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import structlog

from rebalancerd.daemon.plan import CATCHUP_JOBS, Triggers, catchup_deadline
from rebalancerd.ports import JobRun

log = structlog.get_logger(__name__)

#: Run outcomes that settle a fire time; anything else is caught up again.
FINISHED = frozenset({"succeeded", "missed"})


class RunLedger(Protocol):
    """The part of the Store port catch-up needs."""

    def runs_scheduled_at(self, job: str, scheduled_at: datetime) -> list[JobRun]: ...

    def record_missed(
        self, job: str, account: str | None, *, scheduled_at: datetime, at: datetime, note: str
    ) -> int: ...


@dataclass(frozen=True)
class CatchupStep:
    job: str
    scheduled_at: datetime
    deadline: datetime
    run: tuple[str, ...]
    missed: tuple[str, ...]


def plan_catchup(
    triggers: Triggers, ledger: RunLedger, accounts: Sequence[str], now: datetime
) -> list[CatchupStep]:
    """What to run and what to record missed, oldest fire time first."""
    by_job = triggers.by_job()
    steps: list[CatchupStep] = []
    for job in CATCHUP_JOBS:
        fired = by_job[job].latest_at_or_before(now)
        if fired is None:
            continue
        # A failed run, or one a crash left "running", is retried inside its window
        # (every job is safe to repeat: open decisions, slots, client order ids).
        runs = ledger.runs_scheduled_at(job, fired)
        done = {r.account for r in runs if r.outcome in FINISHED}
        pending = tuple(a for a in accounts if a not in done)
        if not pending:
            continue
        deadline = catchup_deadline(job, fired, triggers)
        inside = now < deadline
        steps.append(
            CatchupStep(job, fired, deadline, pending if inside else (), () if inside else pending)
        )
    return sorted(steps, key=lambda s: s.scheduled_at)


RunJob = Callable[[str, list[str], datetime], None]


def run_catchup(
    steps: Sequence[CatchupStep], ledger: RunLedger, run_job: RunJob, now: datetime
) -> None:
    """Carry out a plan: record the missed runs, run the rest through ``run_job``."""
    for step in steps:
        for account in step.missed:
            note = f"daemon down; window closed at {step.deadline.isoformat()}"
            ledger.record_missed(
                step.job, account, scheduled_at=step.scheduled_at, at=now, note=note
            )
            log.warning(
                "job_missed",
                job=step.job,
                account=account,
                scheduled_at=step.scheduled_at.isoformat(),
                window_closed_at=step.deadline.isoformat(),
            )
        if step.run:
            log.info(
                "job_catching_up",
                job=step.job,
                accounts=list(step.run),
                scheduled_at=step.scheduled_at.isoformat(),
                window_closes_at=step.deadline.isoformat(),
            )
            run_job(step.job, list(step.run), step.scheduled_at)
