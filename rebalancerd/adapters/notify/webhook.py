"""A webhook notifier: one JSON POST per event, with a Slack-compatible ``text``.

A notification must never block or fail a job. ``notify`` only puts the event
on a bounded queue and returns; a background thread posts it with a bounded
HTTP timeout and retries transient failures (connection errors, timeouts, 429,
5xx) with exponential backoff. When the queue is full, or every attempt fails,
the event is dropped with a logged warning. ``close`` drains the queue for a
bounded time so a short CLI run still delivers what it queued.

The URL usually embeds a token (Slack), so it is never logged.
"""

from __future__ import annotations

import json
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any, cast

import structlog
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

log = structlog.get_logger(__name__)

#: Sends one body; raises TransientWebhookError (retry) or WebhookError (give up).
PostFn = Callable[[bytes], None]

_STOP = object()


class WebhookError(Exception):
    """The receiver refused the notification (4xx other than 429): not retried."""


class TransientWebhookError(WebhookError):
    """Worth retrying: connection refused, timeout, 429, 5xx."""


def urllib_post(url: str, timeout: float) -> PostFn:
    """POST a JSON body with the standard library; errors translated for the retry policy."""

    def post(body: bytes) -> None:
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "rebalancerd"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            message = f"HTTP {exc.code}"
            if exc.code == 429 or exc.code >= 500:
                raise TransientWebhookError(message) from None
            raise WebhookError(message) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TransientWebhookError(f"{type(exc).__name__}: {reason}") from None

    return post


class WebhookNotifier:
    """Implements the ``Notifier`` port; see the module docstring for the guarantees."""

    def __init__(
        self,
        post: PostFn,
        *,
        events: Collection[str] | None = None,
        retries: int = 3,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 30.0,
        queue_size: int = 100,
    ) -> None:
        self._post = post
        self._events = frozenset(events) if events is not None else None
        self._retries = retries
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.delivered = 0
        self.failed = 0

    def wants(self, event: str) -> bool:
        return self._events is None or event in self._events

    def notify(self, event: str, payload: Mapping[str, Any]) -> None:
        if not self.wants(event):
            return
        body = {
            "text": str(payload.get("text") or f"rebalancerd: {event}"),
            "event": event,
            "at": datetime.now(UTC).isoformat(),
            **{k: v for k, v in payload.items() if k != "text"},
        }
        try:
            self._queue.put_nowait((event, json.dumps(body, default=str).encode()))
        except queue.Full:
            log.warning("notification_dropped", event_type=event, reason="queue_full")
            return
        self._ensure_thread()

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for queued events; True when all were handled."""
        done = self._queue.all_tasks_done
        with done:
            return done.wait_for(lambda: self._queue.unfinished_tasks == 0, timeout=timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (bounded), then stop the sender thread."""
        if self._thread is None:
            return
        self.flush(timeout)
        try:
            self._queue.put_nowait(_STOP)
        except queue.Full:
            return  # the daemon thread dies with the process
        self._thread.join(timeout=1.0)

    # ------------------------------------------------------------------ sender

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="rebalancerd-webhook", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                event, body = cast(tuple[str, bytes], item)
                self._deliver(event, body)
            finally:
                self._queue.task_done()

    def _deliver(self, event: str, body: bytes) -> None:
        retrying = Retrying(
            stop=stop_after_attempt(self._retries + 1),
            wait=wait_exponential(multiplier=self._backoff, max=self._max_backoff),
            retry=retry_if_exception_type(TransientWebhookError),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    self._post(body)
        except WebhookError as exc:
            self.failed += 1
            log.warning("notification_failed", event_type=event, error=str(exc))
        except Exception as exc:  # a bug in a post function must not kill the thread
            self.failed += 1
            log.warning("notification_failed", event_type=event, error=repr(exc)[:200])
        else:
            self.delivered += 1
            log.debug("notification_sent", event_type=event)
