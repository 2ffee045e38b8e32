"""A daemon whose PostgreSQL advisory lock dies (server restart, failover, a
killed backend) stops with exit 1 instead of running beside a standby."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.e2e.test_daemon import RUN, env, until, write_config
from tests.integration.conftest import pg_url_or_skip, reset_pg_schema


@pytest.mark.postgres
def test_a_lost_advisory_lock_stops_the_daemon(tmp_path: Path) -> None:
    url = pg_url_or_skip()
    reset_pg_schema(url)
    config = write_config(tmp_path)
    text = config.read_text(encoding="utf-8").replace(
        "heartbeat_seconds = 30", "heartbeat_seconds = 1"
    )
    config.write_text(text, encoding="utf-8")
    log = tmp_path / "daemon.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*RUN, "--config", str(config), "run", "--now", "2026-11-24T20:00"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**env(), "REBALANCERD_DATABASE_URL": url},
            cwd=tmp_path,
        )

    def events() -> list[str]:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        return [json.loads(x).get("event", "") for x in lines if x.startswith("{")]

    try:
        until("daemon_started", lambda: "daemon_started" in events())
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True) as conn:
            killed = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name LIKE 'rebalancerd %'"
            ).fetchall()
        assert killed, "the lock connection was not found"
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 1
    assert "daemon_lock_lost" in events()
