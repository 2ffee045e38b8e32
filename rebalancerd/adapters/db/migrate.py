"""Apply the shipped Alembic migrations; safe to call at every start.

The scripts are found through ``importlib.resources`` (the ``migrations/``
directory is installed as the ``rebalancerd.migrations`` package), so this
works from a wheel as well as from a checkout, without ``alembic.ini``.

An upgrade runs in a single transaction that first takes the migration lock
(``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL): two processes
starting together migrate once, the second finds the schema at head.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from rebalancerd.adapters.db.engine import lock_named, make_engine, raise_translated

MIGRATION_LOCK = "rebalancerd-migrations"


def script_location() -> str:
    """Filesystem path of the migration scripts package."""
    return str(files("rebalancerd.migrations"))


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the shipped scripts, optionally bound to a connection."""
    cfg = Config()
    cfg.set_main_option("script_location", script_location().replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    """The newest revision the installed package ships."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@contextmanager
def _engine(engine_or_url: Engine | str) -> Iterator[Engine]:
    """Use the caller's engine, or build (and later dispose) one for a URL."""
    if isinstance(engine_or_url, Engine):
        yield engine_or_url
        return
    engine = make_engine(engine_or_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _run_locked(engine: Engine, verb: str, revision: str) -> None:
    try:
        with engine.begin() as conn:
            lock_named(conn, MIGRATION_LOCK)
            cfg = alembic_config(conn)
            if verb == "upgrade":
                command.upgrade(cfg, revision)
            else:
                command.downgrade(cfg, revision)
    except SQLAlchemyError as exc:
        raise_translated(exc, engine.url, f"database migration ({verb}) failed")


def upgrade_to_head(engine_or_url: Engine | str) -> None:
    """Bring the schema to the newest revision; a no-op when it already is."""
    with _engine(engine_or_url) as engine:
        _run_locked(engine, "upgrade", "head")


def downgrade(engine_or_url: Engine | str, revision: str = "base") -> None:
    """Go back to ``revision`` (``"base"`` drops everything); for tests and operators."""
    with _engine(engine_or_url) as engine:
        _run_locked(engine, "downgrade", revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, None for an empty database."""
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        raise_translated(exc, engine.url, "cannot read the schema revision")


def is_up_to_date(engine: Engine) -> bool:
    """Whether the database is at the revision this package ships."""
    return current_revision(engine) == head_revision()
