"""What every part of the SQL store shares: the engine, transactions, accounts.

Every public store method runs in exactly one transaction opened here, and
every SQLAlchemy failure leaves this adapter as a :class:`StoreError` whose
message names the database without its password.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from rebalancerd.adapters.db.engine import raise_translated
from rebalancerd.adapters.db.models import accounts, position_records

#: INSERT statements with ON CONFLICT support (PostgreSQL and SQLite share the API).
UpsertInsert = postgresql.Insert | sqlite.Insert


def utc_now() -> datetime:
    return datetime.now(UTC)


class StoreBase:
    """Engine, clock and transaction helpers for the store's parts."""

    def __init__(self, engine: Engine, *, now: Callable[[], datetime] = utc_now) -> None:
        self.engine = engine
        self._now = now

    @contextmanager
    def _tx(self, what: str = "database operation failed") -> Iterator[Connection]:
        """One transaction; commits on success, translates driver errors."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise_translated(exc, self.engine.url, what)

    def _insert(self, conn: Connection, table: Table) -> UpsertInsert:
        """The dialect's INSERT, which knows ON CONFLICT on both engines."""
        if conn.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def _ensure_account(self, conn: Connection, name: str, at: datetime) -> None:
        """Create the account row on first use; concurrent creators do not collide."""
        stmt = self._insert(conn, accounts).values(name=name, created_at=at)
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))

    def _set_profit_level(
        self, conn: Connection, account: str, symbol: str, level: str, *, taken: bool
    ) -> None:
        """Mark (or re-arm) a profit-take level on the open position record, if any."""
        pr = position_records
        row = conn.execute(
            select(pr.c.id, pr.c.profit_levels_taken)
            .where(pr.c.account == account, pr.c.symbol == symbol, pr.c.closed_at.is_(None))
            .with_for_update()
        ).first()
        if row is None:
            return
        levels = set(row.profit_levels_taken or ())
        updated = levels | {level} if taken else levels - {level}
        if updated != levels:
            conn.execute(
                pr.update().where(pr.c.id == row.id).values(profit_levels_taken=sorted(updated))
            )
