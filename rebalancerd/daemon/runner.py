"""``rebalancerd run``: the daemon's life from lock to exit (SPEC §9).

Start: take the database lock, migrate, schedule the jobs (in-memory job store,
``replace_existing``), queue the catch-up, serve health, send READY=1. Then the
main thread only waits: SIGHUP reloads the config (an invalid file is logged
and the old config keeps running), SIGTERM/SIGINT stop the scheduler after the
job in progress finishes (every decision is written in its own transaction, so
nothing is half-written) and the process exits 0.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

import structlog
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import text

from rebalancerd.composition import App, build_app
from rebalancerd.config.settings import Settings, mask_database_url, reload_settings
from rebalancerd.daemon.health import Metrics, heartbeat_path, serve, write_heartbeat
from rebalancerd.daemon.lock import acquire, lock_for
from rebalancerd.daemon.plan import CATCHUP_JOBS, DISPATCH, Triggers, build_triggers
from rebalancerd.daemon.systemd import Notifier, OffsetClock
from rebalancerd.daemon.triggers import ShiftedTrigger
from rebalancerd.daemon.work import CATCHUP, DaemonWork
from rebalancerd.errors import ConfigError, RebalancerdError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RunOptions:
    wait: bool = False
    offset: timedelta = timedelta(0)


class Daemon:
    def __init__(
        self,
        settings: Settings,
        options: RunOptions,
        on_settings: Callable[[Settings], None] = lambda _s: None,
    ) -> None:
        self.settings, self.options, self.on_settings = settings, options, on_settings
        self.clock = OffsetClock(options.offset)
        self.notifier = Notifier()
        self._wake = threading.Event()
        self._stop = self._reload = False
        self._lock_lost = False
        self._db_lock: object | None = None
        self._lock = threading.Lock()
        self.app: App | None = None
        self.triggers: Triggers | None = None
        self.metrics = Metrics(lambda: self._app().store.metric_counts())
        self.work = DaemonWork(self._current, self.metrics)
        self.scheduler: BackgroundScheduler | None = None

    # ------------------------------------------------------------ state

    def _app(self) -> App:
        assert self.app is not None
        return self.app

    def _current(self) -> tuple[App, Triggers]:
        with self._lock:
            assert self.app is not None and self.triggers is not None
            return self.app, self.triggers

    # ------------------------------------------------------------ signals

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self._reload = True
        else:
            self._stop = True
        self._wake.set()

    def _install_signals(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    # ------------------------------------------------------------ life

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns the exit code (0)."""
        self._install_signals()
        lock = self._db_lock = lock_for(self.settings.database_url)
        waited = acquire(
            lock,
            wait=self.options.wait,
            stopping=lambda: self._stop,
            on_wait=lambda holder: log.warning("daemon_waiting_for_lock", holder=holder),
        )
        if not waited:
            return 0
        server = None
        try:
            self.app = build_app(self.settings, clock=self.clock)
            self.triggers = build_triggers(self.settings, self.app.calendar)
            self.scheduler = self._start_scheduler()
            daemon = self.settings.daemon
            if daemon.health_port is not None:
                host = str(daemon.health_host)
                server = serve(daemon.health_port, self.health, self.metrics, host)
            self._beat()
            self.notifier.send("READY=1", "STATUS=scheduler running")
            self._loop()
            self.notifier.send("STOPPING=1")
            log.info("daemon_stopping")
            self.scheduler.shutdown(wait=True)
        finally:
            if server is not None:
                server.shutdown()
            heartbeat_path(self.settings.database_url).unlink(missing_ok=True)
            if self.app is not None:
                self.app.notifier.daemon_stopped("signal" if self._stop else "error")
                self.app.close()
            lock.release()
        log.info("daemon_stopped")
        return 1 if self._lock_lost else 0

    def _loop(self) -> None:
        interval = float(self.settings.daemon.heartbeat_seconds)
        watchdog = self.notifier.watchdog_interval()
        if watchdog is not None:
            interval = min(interval, watchdog)
        while not self._stop:
            self._wake.wait(interval)
            self._wake.clear()
            if self._reload and not self._stop:
                self._reload = False
                self.reload()
            if not self._lock_held():
                break
            self._beat()

    def _lock_held(self) -> bool:
        """A PostgreSQL advisory lock dies with its connection (server restart,
        failover): then a standby may already run, so this daemon stops (exit 1)
        rather than risk two schedulers on one database."""
        alive = getattr(self._db_lock, "is_alive", None)
        if alive is None or alive():
            return True
        log.error("daemon_lock_lost", action="stopping; restart to take the lock again")
        self._lock_lost = True
        return False

    def _beat(self) -> None:
        """Heartbeat and watchdog, only while the scheduler thread is alive."""
        if not self._scheduler_alive():
            log.error("scheduler_not_running")
            return
        self.notifier.send("WATCHDOG=1")
        write_heartbeat(
            heartbeat_path(self.settings.database_url),
            {"pid": os.getpid(), "at": datetime.now(UTC).isoformat(), "scheduler": "running"},
        )
        self.metrics.scheduler_up.set(1)

    def _scheduler_alive(self) -> bool:
        sched = self.scheduler
        thread = getattr(sched, "_thread", None)
        return bool(sched is not None and sched.running and thread and thread.is_alive())

    # ------------------------------------------------------------ scheduler

    def _start_scheduler(self) -> BackgroundScheduler:
        app = self._app()
        sched = BackgroundScheduler(
            timezone=app.tz,
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": self.settings.daemon.misfire_grace_seconds,
            },
        )
        sched.add_listener(self._on_job_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
        sched.add_listener(self._on_max_instances, EVENT_JOB_MAX_INSTANCES)
        self._schedule_jobs(sched)
        sched.add_job(self.work.catch_up, id=CATCHUP, name=CATCHUP)  # runs at once
        sched.start()
        log.info(
            "daemon_started",
            config=str(self.settings.config_path),
            database=mask_database_url(self.settings.database_url),
            accounts=list(self.settings.accounts),
            pid=os.getpid(),
            now=app.clock.now().astimezone(app.tz).isoformat(),
            time_offset_s=int(self.options.offset.total_seconds()),
        )
        self._log_next_runs(sched)
        app.notifier.daemon_started(list(self.settings.accounts))
        return sched

    def _schedule_jobs(self, sched: BackgroundScheduler) -> None:
        assert self.triggers is not None
        for job, trigger in self.triggers.by_job().items():
            shifted: Any = (
                ShiftedTrigger(trigger, self.options.offset) if self.options.offset else trigger
            )
            sched.add_job(
                self.work.fire, shifted, args=[job], id=job, name=job, replace_existing=True
            )

    def _log_next_runs(self, sched: BackgroundScheduler) -> None:
        tz = self._app().tz
        for job in sched.get_jobs():
            if job.id == CATCHUP or job.next_run_time is None:
                continue
            virtual = (job.next_run_time + self.options.offset).astimezone(tz)
            log.info(
                "job_scheduled", job=job.id, next_run=virtual.isoformat(), trigger=str(job.trigger)
            )

    def _on_job_event(self, event: JobEvent) -> None:
        if event.code == EVENT_JOB_ERROR:
            exc = getattr(event, "exception", None)
            log.error(
                "job_errored",
                job=event.job_id,
                error=f"{type(exc).__name__}: {exc}",
                traceback=getattr(event, "traceback", None),
            )
            return
        virtual = event.scheduled_run_time + self.options.offset
        log.warning("job_misfired", job=event.job_id, scheduled_at=virtual.isoformat())
        if event.job_id in CATCHUP_JOBS:
            app = self._app()
            for account in app.settings.accounts:
                app.store.record_missed(
                    event.job_id,
                    account,
                    scheduled_at=virtual,
                    at=app.clock.now(),
                    note="fire time passed beyond misfire_grace_seconds while busy",
                )

    def _on_max_instances(self, event: JobEvent) -> None:
        log.warning("job_skipped_still_running", job=event.job_id)

    # ------------------------------------------------------------ reload

    def reload(self) -> None:
        """SIGHUP: swap in the re-read config, or keep the old one if it is invalid."""
        # systemd (Type=notify-reload) wants the monotonic time of the reload with it.
        self.notifier.send("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
        try:
            new = reload_settings(self.settings)
            if new.database_url != self.settings.database_url:
                raise ConfigError("changing database_url needs a restart", key="database_url")
            app = build_app(new, clock=self.clock, migrate=False)
        except RebalancerdError as exc:
            log.error("config_reload_failed", error=str(exc), kept=str(self.settings.config_path))
            self.notifier.send("READY=1", "STATUS=reload refused; old config kept")
            return
        with self._lock:
            old, self.app, self.settings = self.app, app, new
            self.triggers = build_triggers(new, app.calendar)
        self.on_settings(new)
        assert self.scheduler is not None
        self._schedule_jobs(self.scheduler)
        if old is not None:
            old.close()
        log.info("config_reloaded", config=str(new.config_path), accounts=list(new.accounts))
        self._log_next_runs(self.scheduler)
        self.notifier.send("READY=1", "STATUS=scheduler running")

    # ------------------------------------------------------------ health

    def health(self) -> tuple[bool, dict[str, Any]]:
        app, _ = self._current()
        body: dict[str, Any] = {"scheduler": self._scheduler_alive()}
        try:
            with app.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            body["database"] = True
            runs = app.store.latest_runs()
        except Exception as exc:  # the report says what is wrong; it must not raise
            body["database"], runs = False, {}
            body["error"] = type(exc).__name__
        body["last_runs"] = {
            job: {
                "outcome": r.outcome,
                "scheduled_at": r.scheduled_at.isoformat() if r.scheduled_at else None,
                "finished_at": r.finished_at.isoformat() if r.finished_at else None,
            }
            for job, r in runs.items()
        }
        if self.scheduler is not None:
            body["next_runs"] = {
                j.id: (j.next_run_time + self.options.offset).isoformat()
                for j in self.scheduler.get_jobs()
                if j.next_run_time is not None and j.id != DISPATCH
            }
        return bool(body["scheduler"] and body["database"]), body
