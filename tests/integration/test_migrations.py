"""Migrations: from empty to head, idempotent, reversible, and equal to the models."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, inspect, select, text
from sqlalchemy.engine import Engine

from rebalancerd.adapters.db.engine import make_engine
from rebalancerd.adapters.db.migrate import (
    current_revision,
    downgrade,
    head_revision,
    is_up_to_date,
    upgrade_to_head,
)
from rebalancerd.adapters.db.models import accounts, metadata

from .conftest import T0

REPO = Path(__file__).resolve().parents[2]

TABLES = {
    "accounts",
    "position_records",
    "decisions",
    "decision_events",
    "orders",
    "weekly_slots",
    "job_runs",
    "sim_accounts",
    "research_reports",
}


def _diffs(engine: Engine, target: MetaData) -> list[object]:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, target))


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_upgrade_empty_database_to_head(engine: Engine) -> None:
    assert current_revision(engine) is None
    assert not is_up_to_date(engine)

    upgrade_to_head(engine)

    assert current_revision(engine) == head_revision() == "0001"
    assert is_up_to_date(engine)
    assert _tables(engine) >= TABLES


def test_models_match_the_migrations(migrated_engine: Engine) -> None:
    assert _diffs(migrated_engine, metadata) == []


def test_the_comparison_would_notice_a_drift(migrated_engine: Engine) -> None:
    """Guard against a vacuous check: an extra model column must show up as a diff."""
    drifted = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.tables.values():
        table.to_metadata(drifted)
    drifted.tables["decisions"].append_column(Column("extra", Integer))
    diffs = _diffs(migrated_engine, drifted)
    assert any(d[0] == "add_column" and d[3].name == "extra" for d in diffs)  # type: ignore[index]


def test_upgrade_twice_is_a_no_op_and_keeps_data(engine: Engine, db_url: str) -> None:
    upgrade_to_head(engine)
    with engine.begin() as conn:
        conn.execute(accounts.insert().values(name="paper", created_at=T0))
    before = _tables(engine)

    upgrade_to_head(engine)
    upgrade_to_head(db_url)  # from a URL too, as `rebalancerd migrate` may

    assert _tables(engine) == before
    assert current_revision(engine) == "0001"
    with engine.connect() as conn:
        assert conn.execute(select(accounts.c.name)).scalars().all() == ["paper"]


def test_downgrade_to_base_and_back(migrated_engine: Engine) -> None:
    downgrade(migrated_engine, "base")

    assert current_revision(migrated_engine) is None
    assert not (_tables(migrated_engine) & TABLES)

    upgrade_to_head(migrated_engine)  # triggers and functions were dropped cleanly
    assert _diffs(migrated_engine, metadata) == []


def test_alembic_ini_and_url_config(engine: Engine, db_url: str) -> None:
    """The developer path: alembic.ini with sqlalchemy.url, no connection passed in."""
    cfg = Config(str(REPO / "alembic.ini"))
    cfg.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))

    command.upgrade(cfg, "head")

    assert current_revision(engine) == "0001"


def test_offline_sql_contains_schema_and_triggers(db_url: str) -> None:
    buffer = io.StringIO()
    cfg = Config(str(REPO / "alembic.ini"), output_buffer=buffer)
    cfg.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))

    command.upgrade(cfg, "head", sql=True)

    sql = buffer.getvalue()
    assert "CREATE TABLE decisions" in sql
    assert "decision_events is append-only" in sql
    assert "closed_at IS NULL" in sql


def test_schema_has_append_only_triggers(migrated_engine: Engine) -> None:
    if migrated_engine.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    else:
        query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    with migrated_engine.connect() as conn:
        names = set(conn.execute(text(query)).scalars())
    assert {"decision_events_no_update", "decision_events_no_delete"} <= names


def test_concurrent_upgrades_migrate_once(db_url: str, engine: Engine) -> None:
    """Two daemons starting together: one migrates, the others find the schema at head."""
    starters = 4
    barrier = threading.Barrier(starters)

    def start() -> None:
        own = make_engine(db_url)
        try:
            barrier.wait()
            upgrade_to_head(own)
        finally:
            own.dispose()

    with ThreadPoolExecutor(max_workers=starters) as pool:
        for future in [pool.submit(start) for _ in range(starters)]:
            future.result(timeout=60)

    assert current_revision(engine) == "0001"
    assert _diffs(engine, metadata) == []
