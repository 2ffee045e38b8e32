"""Liveness for operators and supervisors: heartbeat file, /healthz, /metrics.

The daemon rewrites a small heartbeat file every ``heartbeat_seconds`` while
its scheduler is alive; ``rebalancerd healthcheck`` (a Docker HEALTHCHECK) uses
the HTTP listener when one is configured, else the database, the lock and the
heartbeat's age, so it works with the listener off and the daemon as pid 1.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from rebalancerd.adapters.db.engine import parse_url
from rebalancerd.daemon.lock import sqlite_path


def heartbeat_path(database_url: str) -> Path:
    """Beside the SQLite file; for PostgreSQL in the temp dir, keyed by the URL."""
    url = parse_url(database_url)
    path = sqlite_path(url) if url.get_backend_name() == "sqlite" else None
    if path is not None:
        return path.with_name(path.name + ".heartbeat")
    digest = hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()
    return Path(tempfile.gettempdir()) / f"rebalancerd-{digest[:12]}.heartbeat"


def write_heartbeat(path: Path, payload: Mapping[str, Any]) -> None:
    """Atomically replace the heartbeat (a reader never sees half a file)."""
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(dict(payload)), encoding="utf-8")
    os.replace(tmp, path)


def read_heartbeat(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class Metrics:
    """Job counters kept by the daemon; database counts collected on scrape."""

    def __init__(self, counts: Callable[[], dict[str, list[tuple[tuple[str, ...], int]]]]):
        self.registry = CollectorRegistry()
        self.job_runs = Counter(
            "rebalancerd_job_runs",
            "Job runs by outcome",
            ["job", "outcome"],
            registry=self.registry,
        )
        self.last_success = Gauge(
            "rebalancerd_job_last_success_timestamp_seconds",
            "Unix time of each job's last successful run",
            ["job"],
            registry=self.registry,
        )
        self.scheduler_up = Gauge(
            "rebalancerd_scheduler_up", "1 while the scheduler runs", registry=self.registry
        )
        self.registry.register(_DatabaseCollector(counts))

    def job_finished(self, job: str, ok: bool) -> None:
        self.job_runs.labels(job, "succeeded" if ok else "failed").inc()
        if ok:
            self.last_success.labels(job).set(time.time())

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _DatabaseCollector(Collector):
    _SPECS: ClassVar[dict[str, tuple[str, list[str]]]] = {
        "decisions": ("rebalancerd_decisions", ["account", "action", "status"]),
        "orders": ("rebalancerd_orders", ["status"]),
        "slots": ("rebalancerd_weekly_slots_used", ["account", "week_start"]),
    }

    def __init__(self, counts: Callable[[], dict[str, list[tuple[tuple[str, ...], int]]]]):
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            counts = self._counts()
        except Exception:  # a scrape must not fail because the database hiccuped
            return
        for key, (name, labels) in self._SPECS.items():
            family = GaugeMetricFamily(name, f"{key} in the database", labels=labels)
            for values, n in counts.get(key, []):
                family.add_metric(list(values), n)
            yield family


HealthFn = Callable[[], tuple[bool, dict[str, Any]]]


def serve(
    port: int, health: HealthFn, metrics: Metrics, host: str = "127.0.0.1"
) -> ThreadingHTTPServer:
    """Start /healthz and /metrics on ``host:port`` in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                ok, body = health()
                self._send(200 if ok else 503, "application/json", json.dumps(body).encode())
            elif self.path == "/metrics":
                self._send(200, "text/plain; version=0.0.4", metrics.render())
            else:
                self._send(404, "text/plain", b"not found\n")

        def _send(self, code: int, ctype: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # scrapes every few seconds would drown the log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health-http", daemon=True).start()
    return server
