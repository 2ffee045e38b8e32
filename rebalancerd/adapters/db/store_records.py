"""Position records, simulated broker state and job runs.

Position records are the daemon's memory of when it first saw a position and
which profit-take levels it already acted on; a partial unique index keeps at
most one open record per (account, symbol) while closed ones stay as history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from rebalancerd.adapters.db.models import job_runs, position_records, sim_accounts
from rebalancerd.adapters.db.rows import position_record
from rebalancerd.adapters.db.store_base import StoreBase
from rebalancerd.errors import NotFound
from rebalancerd.ports import PositionRecord

RUNNING = "running"


class RecordStore(StoreBase):
    """Position records, sim state and job runs of :class:`SqlStore`."""

    # ------------------------------------------------------------ positions

    def position_records(self, account: str) -> dict[str, PositionRecord]:
        """The open records of an account, by symbol."""
        pr = position_records.c
        stmt = select(position_records).where(pr.account == account, pr.closed_at.is_(None))
        with self._tx("cannot read position records") as conn:
            return {r["symbol"]: position_record(r) for r in conn.execute(stmt).mappings()}

    def open_position_record(self, record: PositionRecord) -> PositionRecord:
        """Create the record of a newly seen position; an existing open one wins."""
        with self._tx("cannot record position") as conn:
            existing = self._open_record(conn, record.account, record.symbol)
            if existing is not None:
                return existing
            self._ensure_account(conn, record.account, self._now())
            try:
                with conn.begin_nested():
                    conn.execute(position_records.insert().values(self._values(record)))
            except IntegrityError:
                pass  # another process opened it between our read and insert: theirs wins
            found = self._open_record(conn, record.account, record.symbol)
            assert found is not None
            return found

    def _values(self, record: PositionRecord) -> dict[str, object]:
        return {
            "account": record.account,
            "symbol": record.symbol,
            "opened_at": record.opened_at,
            "opened_at_source": record.opened_at_source,
            "avg_entry_price": record.avg_entry_price,
            "catalyst": record.catalyst,
            "catalyst_date": record.catalyst_date,
            "profit_levels_taken": sorted(record.profit_levels_taken),
            "first_seen_at": self._now(),
        }

    def _open_record(self, conn: Connection, account: str, symbol: str) -> PositionRecord | None:
        pr = position_records.c
        row = (
            conn.execute(
                select(position_records).where(
                    pr.account == account, pr.symbol == symbol, pr.closed_at.is_(None)
                )
            )
            .mappings()
            .first()
        )
        return position_record(row) if row is not None else None

    def close_position_record(self, account: str, symbol: str, *, at: datetime) -> None:
        """Close the open record (the position is gone); nothing to do if none is open."""
        pr = position_records.c
        with self._tx("cannot close position record") as conn:
            conn.execute(
                position_records.update()
                .where(pr.account == account, pr.symbol == symbol, pr.closed_at.is_(None))
                .values(closed_at=at)
            )

    # ------------------------------------------------------------ sim state

    def load_sim_state(self, account: str) -> dict[str, Any] | None:
        stmt = select(sim_accounts.c.state).where(sim_accounts.c.account == account)
        with self._tx("cannot read simulated account") as conn:
            state = conn.execute(stmt).scalar_one_or_none()
        return dict(state) if state is not None else None

    def save_sim_state(self, account: str, state: dict[str, Any]) -> None:
        """Replace the account's simulated state (insert or update)."""
        now = self._now()
        with self._tx("cannot save simulated account") as conn:
            self._ensure_account(conn, account, now)
            stmt = self._insert(conn, sim_accounts).values(
                account=account, state=state, updated_at=now
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["account"],
                    set_={"state": stmt.excluded.state, "updated_at": stmt.excluded.updated_at},
                )
            )

    # ------------------------------------------------------------ job runs

    def start_run(
        self, job: str, account: str | None, *, scheduled_at: datetime | None, started_at: datetime
    ) -> int:
        """Record that a job started; returns the run id for :meth:`finish_run`."""
        with self._tx("cannot record job run") as conn:
            if account is not None:
                self._ensure_account(conn, account, started_at)
            result = conn.execute(
                job_runs.insert().values(
                    job=job,
                    account=account,
                    scheduled_at=scheduled_at,
                    started_at=started_at,
                    outcome=RUNNING,
                )
            )
            pk = result.inserted_primary_key
            assert pk is not None
            return int(pk[0])

    def finish_run(
        self, run_id: int, *, outcome: str, finished_at: datetime, error: str | None = None
    ) -> None:
        with self._tx("cannot record job run") as conn:
            result = conn.execute(
                job_runs.update()
                .where(job_runs.c.id == run_id)
                .values(outcome=outcome, finished_at=finished_at, error=error)
            )
            if result.rowcount == 0:
                raise NotFound(f"job run {run_id} not found")
