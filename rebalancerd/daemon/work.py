"""What each scheduled job does: a few lines around :class:`Jobs`.

Every job runs on the scheduler's single worker thread (jobs never overlap, so
the dispatcher cannot race the Monday execution). Context variables are
cleared before and after each run: pool threads are reused, and a ``job`` or
``account`` bound by the previous run must not leak into the next one's logs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog

from rebalancerd.composition import App
from rebalancerd.daemon.catchup import plan_catchup, run_catchup
from rebalancerd.daemon.health import Metrics
from rebalancerd.daemon.plan import DISPATCH, EXECUTION, GUARD, REVIEW, Triggers
from rebalancerd.domain.model import Status
from rebalancerd.errors import RebalancerdError
from rebalancerd.ports import DecisionFilter
from rebalancerd.services.jobs import JobResult, Jobs

log = structlog.get_logger(__name__)

CATCHUP = "catchup"


class DaemonWork:
    """The job bodies; ``current`` returns the live (app, triggers) after reloads."""

    def __init__(self, current: Callable[[], tuple[App, Triggers]], metrics: Metrics) -> None:
        self.current = current
        self.metrics = metrics

    def fire(self, job: str) -> None:
        """Entry point of a scheduled job: runs the fire time that just came."""
        app, triggers = self.current()
        now = app.clock.now()
        scheduled_at = triggers.by_job()[job].latest_at_or_before(now) if job != DISPATCH else None
        self._guarded(job, lambda: self.run_job(job, list(app.settings.accounts), scheduled_at))

    def catch_up(self) -> None:
        """Once at start: reconcile every account with its broker, then catch up."""
        app, triggers = self.current()
        now = app.clock.now()

        def body() -> None:
            self._reconcile(app, now)
            steps = plan_catchup(triggers, app.store, list(app.settings.accounts), now)
            for step in steps:
                if step.missed:
                    app.notifier.run_missed(step.job, step.scheduled_at, "window closed: skipped")
            run_catchup(steps, app.store, self.run_job, now)

        self._guarded(CATCHUP, body)

    def _reconcile(self, app: App, now: datetime) -> None:
        """Start-up reconciliation (SPEC §4): one account's broker failing does not
        stop the others, nor the catch-up after it."""
        for name in app.settings.accounts:
            try:
                app.reconciliation.run(app.account(name), now)
            except RebalancerdError as exc:
                log.error("startup_reconciliation_failed", account=name, error=str(exc))

    def run_job(self, job: str, accounts: list[str], scheduled_at: datetime | None) -> None:
        app, _ = self.current()
        jobs, now = Jobs(app), app.clock.now()
        result: JobResult
        if job == REVIEW:
            result = jobs.review(accounts, scheduled_at=scheduled_at)
        elif job == GUARD:
            result = jobs.guard(accounts, scheduled_at=scheduled_at)
        elif job == EXECUTION:
            result = jobs.execute(accounts, due_by=now, scheduled_at=scheduled_at)
        elif job == DISPATCH:
            due = self._accounts_with_due_decisions(app, now)
            if not due:
                return
            result = jobs.execute(due, due_by=now, scheduled_at=scheduled_at)
        else:  # pragma: no cover - the daemon schedules only the jobs above
            raise ValueError(f"unknown job {job!r}")
        self.metrics.job_finished(job, result.ok)
        for account, error in result.failures.items():
            log.error("job_account_failed", job=job, account=account, error=error)

    def _accounts_with_due_decisions(self, app: App, now: datetime) -> list[str]:
        """Accounts with approved decisions due, or with decisions an interrupted or
        slow execution left ``submitted`` (resumed by lookup, never re-sent)."""
        open_ = app.store.list_decisions(
            DecisionFilter(statuses=frozenset({Status.APPROVED, Status.SUBMITTED}))
        )
        due = {d.account for d in open_ if d.status is Status.SUBMITTED or d.execute_at <= now}
        return [a for a in app.settings.accounts if a in due]

    def _guarded(self, job: str, body: Callable[[], None]) -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(job=job)
        try:
            body()
        except Exception:
            self.metrics.job_finished(job, False)
            raise  # APScheduler's EVENT_JOB_ERROR listener logs it with the traceback
        finally:
            structlog.contextvars.clear_contextvars()
