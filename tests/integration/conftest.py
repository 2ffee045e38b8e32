"""Fixtures for tests against real databases: a SQLite file and PostgreSQL.

``db_url`` runs each test on both engines. PostgreSQL comes from
``TEST_DATABASE_URL`` (CI sets it); without it those cases are skipped with
the reason spelled out. Each PostgreSQL test starts from an empty ``public``
schema.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import Engine, make_url

from rebalancerd.adapters.db.engine import make_engine
from rebalancerd.adapters.db.migrate import upgrade_to_head
from rebalancerd.adapters.db.store import SqlStore
from rebalancerd.domain.model import Action, Source, Status
from rebalancerd.ports import NewDecision

PG_ENV = "TEST_DATABASE_URL"
PG_EXAMPLE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

#: A fixed "now" for rows the store stamps itself.
T0 = datetime(2024, 11, 4, 14, 30, tzinfo=UTC)
WEEK = date(2024, 11, 4)


def pg_url_or_skip() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: set {PG_ENV} (e.g. {PG_EXAMPLE})")
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (e.g. {PG_EXAMPLE}); it is not set")
    return url


def reset_pg_schema(url: str) -> None:
    """Drop everything the previous test left: a fresh, empty public schema."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty database, once per engine."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "db" / "rebalancerd.db")
    url = pg_url_or_skip()
    reset_pg_schema(url)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def migrated_engine(engine: Engine) -> Engine:
    upgrade_to_head(engine)
    return engine


@pytest.fixture
def store(migrated_engine: Engine) -> SqlStore:
    """A SqlStore on a migrated, empty database; rows it stamps itself get T0."""
    return SqlStore(migrated_engine, now=lambda: T0)


def new_decision(**overrides: Any) -> NewDecision:
    """An approved weekly-review EXIT of 10 AAPL, with any field overridden."""
    fields: dict[str, Any] = {
        "account": "paper",
        "source": Source.WEEKLY_REVIEW,
        "symbol": "AAPL",
        "action": Action.EXIT,
        "qty": Decimal("10"),
        "reasons": ["loss_cut"],
        "details": ["plpc -9.1% <= -8%"],
        "inputs": {"price": "91.00", "entry": "100.00"},
        "execute_at": datetime(2024, 11, 4, 14, 30, tzinfo=UTC),
        "status": Status.APPROVED,
        "created_at": datetime(2024, 11, 2, 15, 0, tzinfo=UTC),
    }
    fields.update(overrides)
    return NewDecision(**fields)


@pytest.fixture
def make_decision() -> Callable[..., NewDecision]:
    return new_decision
