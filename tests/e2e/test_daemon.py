"""``rebalancerd run`` as a real process (SQLite + simulated broker).

``--now`` starts the daemon's clock a few seconds before a fire time and lets
it run on, so the Monday execution fires within seconds. A unix datagram
socket stands in for systemd's ``NOTIFY_SOCKET``. Waits are bounded polls;
nothing here asserts how fast anything is.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "rebalancerd.example.toml"
WAIT_S = 60.0
RUN = [sys.executable, "-m", "rebalancerd"]


def write_config(
    tmp: Path, daily_guard: str = "16:30", garbage: bool = False, health_port: int | None = None
) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    if health_port is not None:
        text = text.replace("# health_port = 9464", f"health_port = {health_port}")
    text = text.replace("sqlite:///var/rebalancerd.db", f"sqlite:///{tmp / 'r.db'}")
    text = text.replace('"config/demo-portfolio', f'"{REPO}/config/demo-portfolio')
    text = text.replace('daily_guard = "16:30"', f'daily_guard = "{daily_guard}"')
    path = tmp / "rebalancerd.toml"
    path.write_text(text + ("\nnot_a_key = 1\n" if garbage else ""), encoding="utf-8")
    return path


def env() -> dict[str, str]:
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REBALANCING_", "REBALANCERD_", "ENABLE_AUTO", "APCA_", "NOTIFY_"))
    }
    return keep


def until(what: str, check: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    log: Path
    notify: socket.socket
    db: Path
    config: Path
    messages: list[str]

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def wait_event(self, name: str, after: int = 0, **match: Any) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            for e in self.events()[after:]:
                if e.get("event") == name and all(e.get(k) == v for k, v in match.items()):
                    return e
            return None

        return until(f"log event {name} {match}", find)  # type: ignore[no-any-return]

    def wait_notify(self, message: str) -> None:
        def received() -> bool:
            try:
                while True:
                    self.messages.append(self.notify.recv(4096).decode())
            except BlockingIOError:
                pass
            return any(message in m.split("\n") for m in self.messages)

        until(f"sd_notify {message}", received)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db) as conn:
            return list(conn.execute(sql))


@pytest.fixture
def start_daemon() -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []
    short = Path(tempfile.mkdtemp(prefix="rbd-", dir="/tmp"))

    def start(now: str, *extra: str, health_port: int | None = None) -> Daemon:
        tmp = short / f"d{len(started)}"
        tmp.mkdir()
        config = write_config(tmp, health_port=health_port)
        sock_path = str(tmp / "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(sock_path)
        sock.setblocking(False)
        log = tmp / "daemon.log"
        with open(log, "wb") as out, open(tmp / "daemon.err", "wb") as err:
            proc = subprocess.Popen(
                [*RUN, "--config", str(config), "run", "--now", now, *extra],
                stdout=out,
                stderr=err,
                env={**env(), "NOTIFY_SOCKET": sock_path},
                cwd=tmp,
            )
        daemon = Daemon(proc, log, sock, tmp / "r.db", config, [])
        started.append(daemon)
        return daemon

    yield start
    for d in started:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
        d.notify.close()
    shutil.rmtree(short, ignore_errors=True)


def run_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rebalancerd", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env(),
        timeout=WAIT_S,
    )


def test_daemon_lifecycle(start_daemon: Callable[..., Daemon]) -> None:
    # Monday 2026-11-30, 8 s before the open: Saturday's review is caught up at
    # start, the execution fires at 09:30 and submits what the review decided.
    d = start_daemon("2026-11-30T09:29:52")
    d.wait_notify("READY=1")
    started = d.wait_event("daemon_started")
    assert started["accounts"] == ["dee-bot", "shorgan-bot"]
    assert "daemon_started" not in (d.log.parent / "daemon.err").read_text()  # logs: stdout
    scheduled = {e["job"]: e["next_run"] for e in d.events() if e["event"] == "job_scheduled"}
    assert scheduled["execution"] == "2026-11-30T09:30:00-05:00"
    assert scheduled["weekly_review"] == "2026-12-05T12:00:00-05:00"

    def executed() -> list[tuple[Any, ...]]:
        return d.query(
            "SELECT account, outcome FROM job_runs WHERE job = 'execution' "
            "AND scheduled_at LIKE '2026-11-30 14:30:00%'"
        )

    def finished() -> list[tuple[Any, ...]]:
        runs = executed()
        return runs if len(runs) == 2 and all(o != "running" for _, o in runs) else []

    runs = until("the Monday execution", finished)
    assert sorted(runs) == [("dee-bot", "succeeded"), ("shorgan-bot", "succeeded")]
    reviews = d.query("SELECT outcome FROM job_runs WHERE job = 'weekly_review'")
    assert reviews == [("succeeded",), ("succeeded",)]
    filled = d.query("SELECT count(*) FROM decisions WHERE status = 'filled'")
    assert filled[0][0] > 0

    # a second daemon on the same database is refused and names the holder
    second = run_cli(d.config, "run")
    assert second.returncode == 1
    assert f"pid={d.proc.pid}" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1

    # the healthcheck sees the live daemon (no HTTP listener configured)
    health = run_cli(d.config, "healthcheck")
    assert health.returncode == 0, health.stderr

    # SIGHUP with a valid change: the guard moves to 16:45
    mark = len(d.events())
    write_config(d.config.parent, daily_guard="16:45")
    d.proc.send_signal(signal.SIGHUP)
    d.wait_event("config_reloaded", after=mark)
    d.wait_notify("RELOADING=1")
    guard = d.wait_event("job_scheduled", after=mark, job="daily_guard")
    assert guard["next_run"] == "2026-11-30T16:45:00-05:00"

    # SIGHUP with an invalid file: refused, the old config keeps running
    mark = len(d.events())
    write_config(d.config.parent, daily_guard="16:45", garbage=True)
    d.proc.send_signal(signal.SIGHUP)
    failed = d.wait_event("config_reload_failed", after=mark)
    assert "not_a_key" in failed["error"]
    assert d.proc.poll() is None

    # SIGTERM: STOPPING=1, exit 0, lock and heartbeat released
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=WAIT_S) == 0
    d.wait_notify("STOPPING=1")
    d.wait_event("daemon_stopped")
    write_config(d.config.parent)
    stopped = run_cli(d.config, "healthcheck")
    assert stopped.returncode == 1
    assert "no daemon holds the lock" in stopped.stderr
    assert d.query("SELECT count(*) FROM job_runs WHERE outcome = 'running'") == [(0,)]


def test_sigterm_during_catch_up_leaves_no_half_written_decision(
    start_daemon: Callable[..., Daemon],
) -> None:
    # Sunday: Friday's guard and Saturday's review are caught up at start; the
    # SIGTERM arrives while they run. The job in progress finishes, then exit 0.
    d = start_daemon("2026-11-29T09:00:00")
    d.wait_notify("READY=1")
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=WAIT_S) == 0
    assert d.query("SELECT count(*) FROM job_runs WHERE outcome = 'running'") == [(0,)]
    orphans = d.query(
        "SELECT count(*) FROM decisions d WHERE NOT EXISTS "
        "(SELECT 1 FROM decision_events e WHERE e.decision_id = d.id)"
    )
    assert orphans == [(0,)]


def test_second_instance_waits_with_wait(start_daemon: Callable[..., Daemon]) -> None:
    first = start_daemon("2026-12-01T12:00:00")
    first.wait_notify("READY=1")
    env_ = {**env()}
    waiting_log = first.config.parent / "second.log"
    with open(waiting_log, "wb") as out:
        second = subprocess.Popen(
            [*RUN, "--config", str(first.config), "run", "--wait", "--now", "2026-12-01T12:00"],
            stdout=out,
            stderr=subprocess.DEVNULL,
            env=env_,
        )
    try:
        until(
            "the second daemon to wait",
            lambda: "daemon_waiting_for_lock" in waiting_log.read_text(),
        )
        assert second.poll() is None
        first.proc.send_signal(signal.SIGTERM)
        assert first.proc.wait(timeout=WAIT_S) == 0
        until("the second daemon to start", lambda: "daemon_started" in waiting_log.read_text())
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=WAIT_S) == 0
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_health_endpoint_and_metrics(start_daemon: Callable[..., Daemon]) -> None:
    port = free_port()
    d = start_daemon("2026-11-29T09:00:00", health_port=port)
    d.wait_notify("READY=1")

    def reviewed() -> bool:
        rows = d.query("SELECT outcome FROM job_runs WHERE job = 'weekly_review'")
        return len(rows) == 2 and all(r[0] == "succeeded" for r in rows)

    until("the caught-up review", reviewed)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as resp:
        assert resp.status == 200
        body = json.loads(resp.read())
    assert body["scheduler"] is True and body["database"] is True
    assert body["last_runs"]["weekly_review"]["outcome"] == "succeeded"
    assert body["next_runs"]["execution"] == "2026-11-30T09:30:00-05:00"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        metrics = resp.read().decode()
    assert 'rebalancerd_job_runs_total{job="weekly_review",outcome="succeeded"} 1.0' in metrics
    assert 'rebalancerd_job_last_success_timestamp_seconds{job="weekly_review"}' in metrics
    assert "rebalancerd_decisions{" in metrics
    assert "rebalancerd_weekly_slots_used{" in metrics
    assert "rebalancerd_scheduler_up 1.0" in metrics
    health = run_cli(d.config, "healthcheck")
    assert health.returncode == 0 and "HTTP 200" in health.stdout
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=WAIT_S) == 0
    assert run_cli(d.config, "healthcheck").returncode == 1


def test_schedule_command_json(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = run_cli(config, "schedule", "--now", "2027-02-12T17:00", "--days", "7", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    execution = [r for r in rows if r["job"] == "execution"]
    assert execution == [
        {
            "job": "execution",
            "date": "2027-02-16",
            "at": "2027-02-16T09:30:00-05:00",
            "note": "moved from Mon 2027-02-15: Washington's Birthday",
        }
    ]
    assert not (tmp_path / "r.db").exists()  # the schedule needs no database
