"""One daemon per database (SPEC §9).

SQLite: an ``flock`` on ``<database>.lock`` beside the file; the holder writes
its pid and host into it. PostgreSQL: a session advisory lock held on a
dedicated connection outside any pool (a pooled connection could be recycled
and silently drop the lock); the holder is named by its ``application_name``.
Both locks vanish with the process, so a crashed daemon never blocks the next.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from rebalancerd.adapters.db.engine import PG_CONNECT_TIMEOUT_S, advisory_key, parse_url
from rebalancerd.errors import RebalancerdError, StoreError

LOCK_NAME = "rebalancerd-daemon"


class AlreadyRunning(RebalancerdError):
    """Another daemon holds the lock on this database."""


class DaemonLock(Protocol):
    def try_acquire(self) -> bool: ...

    def holder(self) -> str: ...

    def release(self) -> None: ...


def identity() -> str:
    return f"pid={os.getpid()} host={socket.gethostname()}"


def sqlite_path(url: URL) -> Path | None:
    database = url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser().resolve()


class FileLock:
    """``flock`` on a file (SQLite)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(identity() + "\n")
        handle.flush()
        self._file = handle
        return True

    def holder(self) -> str:
        try:
            found = self.path.read_text(encoding="utf-8").strip()
        except OSError:
            found = ""
        return f"{found or 'unknown process'} (lock {self.path})"

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class AdvisoryLock:
    """A PostgreSQL session advisory lock on its own, unpooled connection."""

    def __init__(self, url: URL) -> None:
        self.key = advisory_key(LOCK_NAME)
        self._engine = create_engine(
            url,
            poolclass=NullPool,
            connect_args={
                "connect_timeout": PG_CONNECT_TIMEOUT_S,
                "application_name": f"rebalancerd {identity()}"[:63],
            },
        )
        self._conn: Connection | None = None

    def try_acquire(self) -> bool:
        try:
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot take the daemon lock: {exc.__class__.__name__}") from None
        if got:
            self._conn = conn
            return True
        conn.close()
        return False

    def holder(self) -> str:
        query = text(
            "SELECT a.application_name, a.client_addr, a.pid FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
            "AND l.granted AND l.classid = :hi AND l.objid = :lo LIMIT 1"
        )
        unsigned = self.key & 0xFFFFFFFFFFFFFFFF
        params = {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF}
        try:
            with self._engine.connect() as conn:
                row = conn.execute(query, params).first()
        except SQLAlchemyError:
            row = None
        if row is None:
            return "unknown process (PostgreSQL advisory lock)"
        return f"{row[0] or 'unknown'} (backend pid {row[2]}, client {row[1] or 'local'})"

    def is_alive(self) -> bool:
        """The lock connection still answers (else the lock may be gone)."""
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self._conn.close()
            except SQLAlchemyError:
                pass  # the session is gone, and the lock with it
            self._conn = None
        self._engine.dispose()


def lock_for(database_url: str) -> FileLock | AdvisoryLock:
    url = parse_url(database_url)
    if url.get_backend_name() == "postgresql":
        return AdvisoryLock(url)
    path = sqlite_path(url)
    if path is None:
        raise StoreError("the daemon needs a SQLite file or PostgreSQL, not an in-memory database")
    return FileLock(path.with_name(path.name + ".lock"))


def acquire(
    lock: FileLock | AdvisoryLock,
    *,
    wait: bool,
    stopping: Callable[[], bool],
    on_wait: Callable[[str], None],
    poll_seconds: float = 1.0,
) -> bool:
    """Take the lock; without ``wait`` raise :class:`AlreadyRunning` naming the holder.

    With ``wait``, poll until it is free; returns False if told to stop meanwhile.
    """
    announced = False
    while not lock.try_acquire():
        holder = lock.holder()
        if not wait:
            raise AlreadyRunning(f"another rebalancerd daemon holds this database: {holder}")
        if not announced:
            on_wait(holder)
            announced = True
        if stopping():
            return False
        time.sleep(poll_seconds)
    return True
