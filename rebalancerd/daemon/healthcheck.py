"""``rebalancerd healthcheck``: is the daemon for this config alive? (Docker HEALTHCHECK)

With ``[daemon] health_port`` set, ask ``/healthz``. Without it (the listener is
off by default), check what a container can check from the inside: the database
answers, some process holds the daemon lock, and the heartbeat the daemon
rewrites every ``heartbeat_seconds`` is recent.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

from rebalancerd.adapters.db.engine import make_engine
from rebalancerd.config.settings import Settings
from rebalancerd.daemon.health import heartbeat_path, read_heartbeat
from rebalancerd.daemon.lock import lock_for
from rebalancerd.errors import RebalancerdError

#: A heartbeat older than this many intervals means the daemon is stuck or gone.
STALE_AFTER_BEATS = 3


def check_health(settings: Settings, now: datetime | None = None) -> tuple[bool, str]:
    """(healthy, one line saying why)."""
    port = settings.daemon.health_port
    if port is not None:
        return _http(port)
    try:
        make_engine(settings.database_url).dispose()
    except RebalancerdError as exc:
        return False, f"database unreachable: {exc}"
    lock = lock_for(settings.database_url)
    try:
        if lock.try_acquire():
            return False, "no daemon holds the lock on this database"
    except RebalancerdError as exc:
        return False, f"cannot check the daemon lock: {exc}"
    finally:
        lock.release()
    return _heartbeat(settings, now or datetime.now(UTC))


def _heartbeat(settings: Settings, now: datetime) -> tuple[bool, str]:
    path = heartbeat_path(settings.database_url)
    beat = read_heartbeat(path)
    if beat is None or "at" not in beat:
        return False, f"no heartbeat at {path}"
    at = datetime.fromisoformat(str(beat["at"]))
    age = now - at
    limit = timedelta(seconds=settings.daemon.heartbeat_seconds * STALE_AFTER_BEATS)
    if age > limit:
        return False, f"heartbeat is {int(age.total_seconds())}s old (limit {int(limit.seconds)}s)"
    return True, f"healthy: daemon pid {beat.get('pid')}, heartbeat {int(age.total_seconds())}s ago"


def _http(port: int) -> tuple[bool, str]:
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200, f"{url}: HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return False, f"{url}: HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{url}: {exc}"
