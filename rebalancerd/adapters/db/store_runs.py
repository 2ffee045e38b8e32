"""Job-run queries for the daemon: catch-up at start and the health report.

The job-run table is the daemon's memory of which fire times were handled: a
fire time with any recorded run (succeeded, failed, missed, or even one left
``running`` by a crash) is never run again by catch-up.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from rebalancerd.adapters.db.models import decisions, job_runs, orders, weekly_slots
from rebalancerd.adapters.db.rows import job_run
from rebalancerd.adapters.db.store_base import StoreBase
from rebalancerd.ports import JobRun

MISSED = "missed"
#: Fire times are compared with this tolerance (databases round sub-seconds).
_TOLERANCE = timedelta(seconds=1)


class RunStore(StoreBase):
    """Job-run look-ups of :class:`SqlStore` (recording lives in RecordStore)."""

    def runs_scheduled_at(self, job: str, scheduled_at: datetime) -> list[JobRun]:
        c = job_runs.c
        stmt = (
            select(job_runs)
            .where(
                c.job == job,
                c.scheduled_at >= scheduled_at - _TOLERANCE,
                c.scheduled_at <= scheduled_at + _TOLERANCE,
            )
            .order_by(c.id)
        )
        with self._tx("cannot read job runs") as conn:
            return [job_run(r) for r in conn.execute(stmt).mappings()]

    def record_missed(
        self, job: str, account: str | None, *, scheduled_at: datetime, at: datetime, note: str
    ) -> int:
        with self._tx("cannot record job run") as conn:
            if account is not None:
                self._ensure_account(conn, account, at)
            result = conn.execute(
                job_runs.insert().values(
                    job=job,
                    account=account,
                    scheduled_at=scheduled_at,
                    started_at=at,
                    finished_at=at,
                    outcome=MISSED,
                    error=note,
                )
            )
            pk = result.inserted_primary_key
            assert pk is not None
            return int(pk[0])

    def latest_runs(self) -> dict[str, JobRun]:
        c = job_runs.c
        newest = select(c.job, func.max(c.id).label("id")).group_by(c.job).subquery()
        stmt = select(job_runs).join(newest, c.id == newest.c.id)
        with self._tx("cannot read job runs") as conn:
            return {r["job"]: job_run(r) for r in conn.execute(stmt).mappings()}

    # ------------------------------------------------------------ metrics

    def metric_counts(self) -> dict[str, list[tuple[tuple[str, ...], int]]]:
        """Counts for ``/metrics``: decisions by account/action/status, orders by
        account-less status, weekly slots held by account and week."""
        d, o, w = decisions.c, orders.c, weekly_slots.c
        queries = {
            "decisions": select(d.account, d.action, d.status, func.count()).group_by(
                d.account, d.action, d.status
            ),
            "orders": select(o.status, func.count()).group_by(o.status),
            "slots": select(w.account, w.week_start, func.count()).group_by(
                w.account, w.week_start
            ),
        }
        out: dict[str, list[tuple[tuple[str, ...], int]]] = {}
        with self._tx("cannot read metrics") as conn:
            for name, stmt in queries.items():
                out[name] = [
                    (tuple(str(v) for v in row[:-1]), int(row[-1])) for row in conn.execute(stmt)
                ]
        return out
