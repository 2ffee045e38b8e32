"""Engine construction for SQLite (the default) and PostgreSQL.

SQLite is tuned so that several daemon processes, CLI commands and threads can
share one file: WAL for concurrent readers, a long busy timeout, foreign keys
on, and ``BEGIN IMMEDIATE`` so that writers queue up for the lock at the start
of a transaction instead of failing half-way with "database is locked".
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError, StatementError
from sqlalchemy.pool import ConnectionPoolEntry

from rebalancerd.errors import ConfigError, StoreError

SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 10

_SQLITE_DRIVERS = {"sqlite", "sqlite+pysqlite"}
_PG_DRIVERS = {"postgresql", "postgres", "postgresql+psycopg"}


def parse_url(url: str | URL) -> URL:
    """Parse and normalise a database URL; a bad one is a configuration error.

    The message never repeats the URL: it may carry a password.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise ConfigError("malformed database URL", key="database_url") from exc
    if parsed.drivername in _PG_DRIVERS:
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in _SQLITE_DRIVERS:
        return parsed
    raise ConfigError(
        f"unsupported database driver {parsed.drivername!r} "
        "(use sqlite:/// or postgresql+psycopg://)",
        key="database_url",
    )


def safe_url(url: str | URL | Engine) -> str:
    """The URL as it may appear in logs and errors: password masked."""
    if isinstance(url, Engine):
        url = url.url
    if isinstance(url, str):
        try:
            url = make_url(url)
        except (ArgumentError, ValueError):
            return "<malformed database URL>"
    return url.render_as_string(hide_password=True)


def scrub(message: str, url: URL) -> str:
    """Remove the URL's password from a driver message, should a driver echo it."""
    password = url.password
    if password:
        message = message.replace(str(password), "***")
    return message


def store_error(exc: SQLAlchemyError, url: URL, what: str) -> Exception:
    """The error to raise for a failed database call.

    A ValueError/TypeError from binding a parameter (a naive datetime, a float
    where a Decimal belongs) is the caller's bug and is returned as itself;
    everything else becomes a StoreError without the password or SQL params.
    """
    orig = getattr(exc, "orig", None)
    if isinstance(exc, StatementError) and isinstance(orig, ValueError | TypeError):
        return orig
    detail = str(orig if orig is not None else exc).strip().splitlines()
    first = detail[0] if detail else type(exc).__name__
    return StoreError(scrub(f"{what} ({safe_url(url)}): {first}", url))


def raise_translated(exc: SQLAlchemyError, url: URL, what: str) -> NoReturn:
    """Raise :func:`store_error`'s translation of ``exc`` (call in an ``except``)."""
    err = store_error(exc, url, what)
    if err is getattr(exc, "orig", None):
        raise err from None
    raise err from exc


def make_engine(url: str) -> Engine:
    """Build the engine for ``url`` and check that the database answers.

    Raises :class:`ConfigError` for a malformed URL and :class:`StoreError`
    when the database cannot be reached.
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed)
    else:
        engine = create_engine(
            parsed,
            pool_pre_ping=True,
            connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S},
        )
    _check_connection(engine)
    return engine


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    """Take transaction control from pysqlite and set the per-connection pragmas.

    busy_timeout comes first so that switching to WAL waits for a busy file.
    """
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    """Start every transaction holding the write lock (SQLAlchemy's pysqlite recipe)."""
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _check_connection(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        engine.dispose()
        raise store_error(exc, engine.url, "cannot connect to the database") from None


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_xact_lock``.

    Python's ``hash`` is salted per process, so a digest is used: every
    process must compute the same key for the same name.
    """
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_named(conn: Connection, name: str) -> None:
    """Serialise transactions on ``name`` until this transaction ends.

    PostgreSQL takes a transaction-level advisory lock; SQLite needs nothing
    because every transaction already began with ``BEGIN IMMEDIATE``.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(name)})
