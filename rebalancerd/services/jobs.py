"""The three jobs as one-shot calls, shared by the CLI and the scheduler.

``rebalancerd review --dry-run`` runs exactly what Saturday runs: both call
:meth:`Jobs.review`. Each account's run is recorded in the job-run table; one
account failing is recorded and logged and the others still run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from rebalancerd.composition import App
from rebalancerd.domain.model import Block
from rebalancerd.domain.timing import next_execution
from rebalancerd.errors import ConfigError, RebalancerdError
from rebalancerd.ports import DecisionRecord
from rebalancerd.services.accounts import AccountContext
from rebalancerd.services.evaluate import block_applies

log = structlog.get_logger(__name__)


@dataclass
class JobResult:
    decisions: list[DecisionRecord] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


class Jobs:
    def __init__(self, app: App):
        self.app = app

    def review(
        self,
        accounts: Iterable[str],
        *,
        dry_run: bool = False,
        scheduled_at: datetime | None = None,
    ) -> JobResult:
        self.app.approval.expire_due(self.app.clock.now())
        return self._each(
            "weekly_review", accounts, scheduled_at, self._evaluate(Block.WEEKLY, dry_run)
        )

    def guard(
        self,
        accounts: Iterable[str],
        *,
        dry_run: bool = False,
        scheduled_at: datetime | None = None,
    ) -> JobResult:
        return self._each(
            "daily_guard", accounts, scheduled_at, self._evaluate(Block.DAILY, dry_run)
        )

    def execute(
        self,
        accounts: Iterable[str],
        *,
        dry_run: bool = False,
        due_by: datetime | None = None,
        scheduled_at: datetime | None = None,
    ) -> JobResult:
        """Submit approved decisions due by ``due_by``.

        Run by hand (no ``due_by``) it executes everything queued for the coming
        execution, as the Monday job would; the scheduler passes ``now``.
        """

        def run(ctx: AccountContext, now: datetime) -> list[DecisionRecord]:
            opts = self.app.run_options(dry_run)
            cutoff = due_by
            if cutoff is None:
                upcoming = next_execution(
                    now, ctx.tz, ctx.calendar, weekday=opts.execution_weekday, at=opts.execution_at
                )
                cutoff = max(now, upcoming)
            done = self.app.execution.run(ctx, now, opts, cutoff)
            self.app.notifier.exits_settled(ctx.name, done)
            return done

        self.app.approval.expire_due(self.app.clock.now())
        return self._each("execution", accounts, scheduled_at, run)

    def _evaluate(
        self, block: Block, dry_run: bool
    ) -> Callable[[AccountContext, datetime], list[DecisionRecord]]:
        def run(ctx: AccountContext, now: datetime) -> list[DecisionRecord]:
            opts = self.app.run_options(dry_run)
            advice = None
            if block is Block.WEEKLY and block_applies(ctx, block):
                advice = self.app.research.fetch(ctx, now).advice
            decisions = self.app.evaluation.run(ctx, block, now, opts, advice)
            self.app.notifier.approval_pending(ctx.name, decisions)
            return decisions

        return run

    def _each(
        self,
        job: str,
        accounts: Iterable[str],
        scheduled_at: datetime | None,
        run: Callable[[AccountContext, datetime], list[DecisionRecord]],
    ) -> JobResult:
        result = JobResult()
        store, clock = self.app.store, self.app.clock
        for name in accounts:
            now = clock.now()
            run_id = store.start_run(job, name, scheduled_at=scheduled_at, started_at=now)
            structlog.contextvars.bind_contextvars(
                job=job, account=name, run_id=uuid.uuid4().hex[:12]
            )
            try:
                decisions = run(self.app.account(name), now)
            except ConfigError:
                store.finish_run(run_id, outcome="failed", finished_at=clock.now(), error="config")
                self.app.notifier.job_failed(job, name, "configuration error")
                raise
            except RebalancerdError as exc:
                store.finish_run(run_id, outcome="failed", finished_at=clock.now(), error=str(exc))
                log.error("job_failed", error=str(exc), error_type=type(exc).__name__)
                result.failures[name] = str(exc)
                self.app.notifier.job_failed(job, name, str(exc))
                continue
            except Exception as exc:
                # A bug or a foreign error: recorded and logged with its traceback; the
                # other accounts still run (one account's fault must not cost the rest).
                error = repr(exc)[:500]
                store.finish_run(run_id, outcome="failed", finished_at=clock.now(), error=error)
                log.exception("job_failed", error=error, error_type=type(exc).__name__)
                result.failures[name] = error
                self.app.notifier.job_failed(job, name, error)
                continue
            except BaseException as exc:
                # An interrupt: the run is recorded as failed, then re-raised.
                store.finish_run(
                    run_id, outcome="failed", finished_at=clock.now(), error=repr(exc)[:500]
                )
                raise
            finally:
                structlog.contextvars.unbind_contextvars("job", "account", "run_id")
            store.finish_run(run_id, outcome="succeeded", finished_at=clock.now())
            log.info("job_finished", job=job, account=name, decisions=len(decisions))
            result.decisions.extend(decisions)
        return result
