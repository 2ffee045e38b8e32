"""Alembic environment for rebalancerd.

Three ways in, all ending in :func:`_run`:

* programmatically with a connection in ``config.attributes["connection"]``
  (what :mod:`rebalancerd.adapters.db.migrate` does at every start);
* programmatically or from the ``alembic`` CLI with ``sqlalchemy.url`` set
  (``-x url=...`` overrides it);
* offline (``alembic upgrade head --sql``) to print the SQL.

No logging is configured here: ``fileConfig`` would replace the daemon's
structured logging when migrations run at start-up.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from rebalancerd.adapters.db.engine import lock_named, make_engine, parse_url
from rebalancerd.adapters.db.migrate import MIGRATION_LOCK
from rebalancerd.adapters.db.models import metadata


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    url = url or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: set sqlalchemy.url or pass -x url=...")
    return url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(
        url=parse_url(_url()),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    try:
        with engine.begin() as conn:
            lock_named(conn, MIGRATION_LOCK)
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
