"""sd_notify messages (systemd ``Type=notify``) and the clock of ``run --now``."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import sdnotify


class Notifier:
    """Sends READY/WATCHDOG/RELOADING/STOPPING only when ``NOTIFY_SOCKET`` is set."""

    def __init__(self) -> None:
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET"))
        self._sd = sdnotify.SystemdNotifier() if self.enabled else None

    def send(self, *lines: str) -> None:
        if self._sd is not None:
            self._sd.notify("\n".join(lines))

    def watchdog_interval(self) -> float | None:
        """Half of systemd's ``WatchdogSec`` (seconds), when the watchdog is on."""
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        if not usec.isdigit() or (pid and pid != str(os.getpid())):
            return None
        return int(usec) / 2_000_000


class OffsetClock:
    """The wall clock shifted by ``offset``: ``run --now T`` starts at T and runs on."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset
