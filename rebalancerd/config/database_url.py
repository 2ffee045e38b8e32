"""Database URLs: which ones the daemon accepts, and how they are shown."""

from __future__ import annotations

import re

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

_SECRET_QUERY_KEY = re.compile(r"pass|secret|token|key", re.IGNORECASE)


def normalize_database_url(value: str) -> str:
    """SQLite or PostgreSQL (psycopg 3) only; ``postgres(ql)://`` → ``postgresql+psycopg://``."""
    try:
        url = make_url(value.strip())
    except (ArgumentError, ValueError):
        raise ValueError(
            "not a database URL: use e.g. sqlite:///var/rebalancerd.db "
            "or postgresql+psycopg://user@host/dbname"
        ) from None
    backend, _, driver = url.drivername.partition("+")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise ValueError(f"unsupported SQLite driver {driver!r}: use sqlite:///PATH")
        if url.database in (None, "", ":memory:") or "mode=memory" in str(url):
            # An in-memory database forgets every decision, slot and level at exit.
            raise ValueError("an in-memory SQLite database keeps nothing: use sqlite:///PATH")
    elif backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise ValueError(f"unsupported PostgreSQL driver {driver!r}: use postgresql+psycopg://")
        url = url.set(drivername="postgresql+psycopg")
    else:
        raise ValueError(
            f"unsupported database {backend!r}: use sqlite:/// or postgresql+psycopg://"
        )
    return url.render_as_string(hide_password=False)


def mask_database_url(value: str) -> str:
    """The URL with its password (and secret-looking query values) replaced by ``***``."""
    try:
        url = make_url(value)
    except (ArgumentError, ValueError):
        return "***"
    query = {k: ("***" if _SECRET_QUERY_KEY.search(k) else v) for k, v in url.query.items()}
    return url.set(query=query).render_as_string(hide_password=True)
