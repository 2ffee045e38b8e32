"""The webhook notifier against a loopback HTTP server: delivery, retries, isolation.

The server answers with a scripted list of status codes (then 200) and can be
made to hold a request until the test releases it, which proves that
``notify`` returns while a delivery is still in flight, without timing anything.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, get_args
from zoneinfo import ZoneInfo

import pytest

from rebalancerd.adapters.notify import EVENT_TYPES, Notifications, WebhookNotifier
from rebalancerd.adapters.notify.webhook import urllib_post
from rebalancerd.composition import build_app
from rebalancerd.config.models import NotificationsConfig, NotifyEvent
from rebalancerd.config.settings import load_settings
from rebalancerd.errors import BrokerError, ConfigError
from rebalancerd.services.jobs import Jobs
from tests.e2e.conftest import example_config
from tests.fakes import FakeClock

NY = ZoneInfo("America/New_York")
SATURDAY = datetime(2026, 11, 28, 12, 0, tzinfo=NY)


class Hook:
    """A loopback webhook receiver: records bodies, answers ``script`` then 200."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.script: list[int] = []
        self.hold = threading.Event()
        self.hold.set()  # set = answer at once
        self.entered = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                hook.bodies.append(json.loads(self.rfile.read(length)))
                hook.entered.set()
                hook.hold.wait(timeout=30)
                status = hook.script.pop(0) if hook.script else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def notifier(url: str, **kw: Any) -> WebhookNotifier:
    kw.setdefault("backoff_seconds", 0)
    return WebhookNotifier(urllib_post(url, kw.pop("timeout", 5.0)), **kw)


def test_an_event_is_posted_as_json_with_a_slack_text(hook: Hook) -> None:
    n = notifier(hook.url)
    n.notify("job_failed", {"text": "execution failed", "account": "dee-bot"})
    n.close(timeout=10)
    [body] = hook.bodies
    assert body["text"] == "execution failed"
    assert (body["event"], body["account"]) == ("job_failed", "dee-bot")
    assert datetime.fromisoformat(body["at"]).tzinfo is not None
    assert (n.delivered, n.failed) == (1, 0)


def test_transient_failures_are_retried_until_delivered(hook: Hook) -> None:
    hook.script = [500, 429, 503]
    n = notifier(hook.url, retries=3)
    n.notify("exit_executed", {"text": "sold"})
    n.close(timeout=10)
    assert len(hook.bodies) == 4
    assert (n.delivered, n.failed) == (1, 0)


def test_retries_are_bounded_and_the_event_is_dropped(hook: Hook) -> None:
    hook.script = [500] * 10
    n = notifier(hook.url, retries=2)
    n.notify("exit_executed", {"text": "sold"})
    n.close(timeout=10)
    assert len(hook.bodies) == 3
    assert (n.delivered, n.failed) == (0, 1)


def test_a_refusal_is_not_retried(hook: Hook) -> None:
    hook.script = [400]
    n = notifier(hook.url, retries=5)
    n.notify("exit_executed", {"text": "sold"})
    n.close(timeout=10)
    assert len(hook.bodies) == 1
    assert (n.delivered, n.failed) == (0, 1)


def test_an_unreachable_webhook_fails_quietly() -> None:
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{closed.server_address[1]}/"
    closed.server_close()  # nothing listens there any more
    n = notifier(url, retries=1)
    n.notify("job_failed", {"text": "x"})
    n.close(timeout=10)
    assert (n.delivered, n.failed) == (0, 1)


def test_a_hanging_webhook_times_out_instead_of_hanging(hook: Hook) -> None:
    hook.hold.clear()  # the server never answers until the test ends
    n = notifier(hook.url, retries=0, timeout=0.2)
    n.notify("job_failed", {"text": "x"})
    n.flush(timeout=30)
    assert (n.delivered, n.failed) == (0, 1)


def test_notify_returns_while_a_delivery_is_in_flight(hook: Hook) -> None:
    hook.hold.clear()
    n = notifier(hook.url, queue_size=1)
    n.notify("job_failed", {"text": "first"})
    assert hook.entered.wait(timeout=30)  # the sender is blocked inside the POST
    n.notify("job_failed", {"text": "second"})  # queued: returns at once
    n.notify("job_failed", {"text": "third"})  # queue full: dropped, still returns
    assert not hook.hold.is_set() and len(hook.bodies) == 1
    hook.hold.set()
    n.close(timeout=10)
    assert [b["text"] for b in hook.bodies] == ["first", "second"]


def test_only_the_configured_event_types_are_sent(hook: Hook) -> None:
    n = notifier(hook.url, events={"job_failed"})
    n.notify("approval_pending", {"text": "not wanted"})
    n.notify("job_failed", {"text": "wanted"})
    n.close(timeout=10)
    assert [b["text"] for b in hook.bodies] == ["wanted"]


def test_every_event_the_daemon_sends_can_be_configured() -> None:
    assert set(EVENT_TYPES) == set(NotificationsConfig().events)
    assert len(EVENT_TYPES) == len(get_args(NotifyEvent))


def test_a_notifier_bug_never_reaches_the_caller() -> None:
    class Broken:
        def notify(self, event: str, payload: Any) -> None:
            raise RuntimeError("boom")

    Notifications(Broken(), NY).job_failed("execution", "dee-bot", "x")  # no exception


# ------------------------------------------------------------------ wired into the jobs


def _app(tmp_path: Path, url: str | None, **kw: Any) -> Any:
    config = example_config(
        tmp_path,
        extra='\n[notifications]\nwebhook_url_env = "TEST_HOOK_URL"\n',
        replace={'approval = "never"': 'approval = "always"'},
    )
    environ = {"TEST_HOOK_URL": url} if url else {}
    settings = load_settings(config, environ=environ, env_file=None)
    return build_app(settings, clock=FakeClock(SATURDAY), **kw)


def test_a_review_announces_the_decisions_waiting_for_approval(hook: Hook, tmp_path: Path) -> None:
    app = _app(tmp_path, hook.url)
    result = Jobs(app).review(["dee-bot"])
    app.close()  # drains the queue
    assert result.ok
    [body] = hook.bodies
    assert body["event"] == "approval_pending" and body["account"] == "dee-bot"
    pending = [d.id for d in result.decisions if d.status.value == "pending_approval"]
    assert body["decision_ids"] == pending
    assert "EXIT 80 SHOP (stop_approach)" in body["text"]
    assert "rebalancerd approve" in body["text"]


def test_a_failing_job_is_announced_and_a_failing_webhook_fails_no_job(
    hook: Hook, tmp_path: Path
) -> None:
    def broken_broker(*args: Any) -> Any:
        raise BrokerError("broker unreachable")

    hook.script = [500] * 10
    app = _app(tmp_path, hook.url, broker_factory=broken_broker)
    result = Jobs(app).review(["dee-bot"])
    app.close()
    assert result.failures == {"dee-bot": "broker unreachable"}
    assert {b["event"] for b in hook.bodies} == {"job_failed"}
    assert "weekly_review failed: broker unreachable" in hook.bodies[0]["text"]


def test_a_webhook_variable_that_is_not_set_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"notifications\.webhook_url_env") as info:
        _app(tmp_path, None)
    assert info.value.exit_code == 78


def test_the_example_config_documents_every_notifications_key() -> None:
    text = (Path(__file__).resolve().parents[2] / "config" / "rebalancerd.example.toml").read_text(
        encoding="utf-8"
    )
    assert "# [notifications]" in text
    for key in NotificationsConfig.model_fields:
        assert f"# {key} = " in text, key


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ('events = ["job_failed", "job_faild"]', "notifications.events"),
        ("retries = 11", "notifications.retries"),
        ("webhook_url = 'https://hooks.example/x'", "notifications.webhook_url"),
    ],
)
def test_a_bad_notifications_table_is_refused_naming_the_key(
    tmp_path: Path, table: str, key: str
) -> None:
    config = example_config(tmp_path, extra=f"\n[notifications]\n{table}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config, environ={}, env_file=None)
    assert key in str(info.value) and info.value.exit_code == 78


def test_check_config_shows_whether_the_webhook_url_is_set(tmp_path: Path) -> None:
    from rebalancerd.config.settings import effective_config

    config = example_config(
        tmp_path, extra='\n[notifications]\nwebhook_url_env = "TEST_HOOK_URL"\n'
    )
    secret = "https://hooks.example/T000/B000/s3cr3t"
    settings = load_settings(config, environ={"TEST_HOOK_URL": secret}, env_file=None)
    shown = effective_config(settings)["notifications"]
    assert shown["webhook_url"] == "set" and shown["webhook_url_env"] == "TEST_HOOK_URL"
    assert secret not in json.dumps(effective_config(settings))
