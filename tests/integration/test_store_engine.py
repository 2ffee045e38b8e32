"""Engine set-up and error translation: pragmas, URLs, and no leaked passwords."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from rebalancerd.adapters.db.engine import make_engine, parse_url
from rebalancerd.adapters.db.store import SqlStore
from rebalancerd.errors import ConfigError, NotFound, StoreError

from .conftest import pg_url_or_skip, sqlite_url

SECRET = "s3cr3t-pw"


def test_sqlite_engine_creates_the_directory_and_sets_pragmas(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path / "a" / "b" / "state.db"))
    try:
        assert (tmp_path / "a" / "b" / "state.db").exists()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        engine.dispose()


def test_sqlite_transactions_begin_immediate(tmp_path: Path) -> None:
    """A second writer cannot even start a transaction while the first holds one."""
    url = sqlite_url(tmp_path / "lock.db")
    first, second = make_engine(url), make_engine(url)
    try:
        with second.connect() as conn:
            conn.exec_driver_sql("PRAGMA busy_timeout = 0")
            conn.commit()
            with first.begin(), pytest.raises(OperationalError, match="locked"):
                conn.begin()
    finally:
        first.dispose()
        second.dispose()


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("sqlite:///x.db", "sqlite"),
    ],
)
def test_urls_are_normalised(given: str, driver: str) -> None:
    assert parse_url(given).drivername == driver


@pytest.mark.parametrize(
    "bad",
    [f"not a url :{SECRET}", f"mysql://u:{SECRET}@h/db", f"postgresql+psycopg2://u:{SECRET}@h/d"],
)
def test_bad_urls_are_config_errors_without_the_password(bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_engine(bad)
    assert info.value.exit_code == 78
    assert SECRET not in str(info.value)


def test_unreachable_postgres_is_a_store_error_without_the_password() -> None:
    with pytest.raises(StoreError) as info:
        make_engine(f"postgresql://someone:{SECRET}@127.0.0.1:1/nowhere")
    message = str(info.value)
    assert SECRET not in message and "***" in message
    assert SECRET not in repr(info.value.__cause__) and info.value.__cause__ is None


def test_wrong_password_is_a_store_error_without_the_password() -> None:
    url = parse_url(pg_url_or_skip()).set(username="nobody_here", password=SECRET)
    with pytest.raises(StoreError) as info:
        make_engine(url.render_as_string(hide_password=False))
    assert SECRET not in str(info.value)


@pytest.fixture
def unmigrated_store(engine: Engine) -> SqlStore:
    return SqlStore(engine)


def test_database_errors_become_store_errors(unmigrated_store: SqlStore) -> None:
    with pytest.raises(StoreError, match="cannot read decision"):
        unmigrated_store.get_decision(1)
    with pytest.raises(StoreError, match="cannot save simulated account"):
        unmigrated_store.save_sim_state("paper", {})


def test_not_found_is_not_a_store_error(store: SqlStore) -> None:
    with pytest.raises(NotFound) as info:
        store.get_decision(1)
    assert not isinstance(info.value, StoreError)
