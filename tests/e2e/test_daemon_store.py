"""The daemon's database parts on SQLite and PostgreSQL: job-run queries and the lock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rebalancerd.adapters.db.engine import make_engine
from rebalancerd.adapters.db.migrate import upgrade_to_head
from rebalancerd.adapters.db.store import SqlStore
from rebalancerd.daemon.lock import AlreadyRunning, acquire, lock_for
from tests.integration.conftest import pg_url_or_skip, reset_pg_schema

T = datetime(2026, 11, 30, 14, 30, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'r.db'}"
    pg = pg_url_or_skip()
    reset_pg_schema(pg)
    return pg


@pytest.fixture
def store(url: str) -> Iterator[SqlStore]:
    engine = make_engine(url)
    upgrade_to_head(engine)
    yield SqlStore(engine, now=lambda: T)
    engine.dispose()


def test_runs_scheduled_at_finds_runs_of_that_fire_time_only(store: SqlStore) -> None:
    run = store.start_run("execution", "dee-bot", scheduled_at=T, started_at=T)
    store.finish_run(run, outcome="succeeded", finished_at=T + timedelta(seconds=3))
    store.start_run("execution", "shorgan-bot", scheduled_at=T + timedelta(days=7), started_at=T)
    store.record_missed(
        "daily_guard", "dee-bot", scheduled_at=T, at=T + timedelta(hours=20), note="down"
    )
    found = store.runs_scheduled_at("execution", T)
    assert [(r.account, r.outcome) for r in found] == [("dee-bot", "succeeded")]
    assert found[0].scheduled_at == T
    missed = store.runs_scheduled_at("daily_guard", T)
    assert [(r.outcome, r.error) for r in missed] == [("missed", "down")]
    assert store.runs_scheduled_at("weekly_review", T) == []


def test_latest_runs_is_the_newest_run_per_job(store: SqlStore) -> None:
    first = store.start_run("daily_guard", "dee-bot", scheduled_at=T, started_at=T)
    store.finish_run(first, outcome="failed", finished_at=T, error="boom")
    later = T + timedelta(days=1)
    second = store.start_run("daily_guard", "dee-bot", scheduled_at=later, started_at=later)
    store.finish_run(second, outcome="succeeded", finished_at=later)
    latest = store.latest_runs()
    assert set(latest) == {"daily_guard"}
    assert latest["daily_guard"].outcome == "succeeded"
    assert latest["daily_guard"].scheduled_at == later


def test_metric_counts_on_an_empty_database(store: SqlStore) -> None:
    assert store.metric_counts() == {"decisions": [], "orders": [], "slots": []}


def test_one_daemon_lock_per_database(url: str) -> None:
    make_engine(url).dispose()  # creates the SQLite directory
    first, second = lock_for(url), lock_for(url)
    try:
        assert first.try_acquire()
        with pytest.raises(AlreadyRunning, match="pid="):
            acquire(second, wait=False, stopping=lambda: False, on_wait=lambda _h: None)
        waited: list[str] = []
        got = acquire(second, wait=True, stopping=lambda: bool(waited), on_wait=waited.append)
        assert got is False and "pid=" in waited[0]
        first.release()
        assert second.try_acquire()
    finally:
        first.release()
        second.release()


def test_healthcheck_without_listener_needs_lock_and_a_recent_heartbeat(tmp_path: Path) -> None:
    from rebalancerd.config.settings import Settings
    from rebalancerd.daemon.health import heartbeat_path, write_heartbeat
    from rebalancerd.daemon.healthcheck import check_health

    url = f"sqlite:///{tmp_path / 'r.db'}"
    settings = Settings(database_url=url)
    now = datetime(2026, 11, 30, 15, tzinfo=UTC)
    ok, why = check_health(settings, now)
    assert not ok and "no daemon holds the lock" in why
    lock = lock_for(url)
    assert lock.try_acquire()
    try:
        ok, why = check_health(settings, now)
        assert not ok and "no heartbeat" in why
        beat = heartbeat_path(url)
        write_heartbeat(beat, {"pid": 1, "at": (now - timedelta(seconds=20)).isoformat()})
        ok, why = check_health(settings, now)
        assert ok, why
        write_heartbeat(beat, {"pid": 1, "at": (now - timedelta(minutes=5)).isoformat()})
        ok, why = check_health(settings, now)
        assert not ok and "heartbeat is 300s old" in why
    finally:
        lock.release()
