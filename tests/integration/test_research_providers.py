"""Research providers against real files, real processes and a loopback HTTP server.

The Anthropic provider talks to a stdlib ``http.server`` that implements
``POST /v1/messages`` well enough for the official SDK.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from rebalancerd.adapters.research import (
    AnthropicResearchSource,
    CommandResearchSource,
    FolderResearchSource,
    ResearchProviderError,
)
from rebalancerd.domain.model import Action
from rebalancerd.domain.report_parser import parse_report
from rebalancerd.errors import ConfigError, RebalancerdError
from rebalancerd.ports import ResearchReport, ResearchSource

NOW = datetime(2026, 11, 7, 17, 0, tzinfo=UTC)  # Saturday 12:00 New York
REPORT = """# Weekly research

## PORTFOLIO REBALANCING

### EXITS
- **ENPH**: EXIT - Held 18 days, catalyst passed, up 12% → Lock in gains
- **AMD**: TRIM 50% - Position grew to 18% of portfolio → Reduce concentration

### NEW ENTRIES
- **TSLA**: BUY - New catalyst: Model 3 refresh (Nov 15)
"""
API_KEY = "sk-ant-test-0123456789"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def context_for(account: str) -> str:
    return f"# Portfolio context: {account}\n| AMD | 120 | +31.0% |\n"


def check_report(report: ResearchReport | None, source: str, text: str = REPORT) -> None:
    assert report is not None
    assert report.id is None
    assert report.account == "dee-bot"
    assert report.source == source
    assert report.text == text
    assert report.sha256 == sha(text)
    assert report.received_at == NOW and report.received_at.tzinfo is not None
    assert report.advice == ()


# --------------------------------------------------------------------------- folder


def touch(path: Path, text: str, age: timedelta) -> Path:
    path.write_text(text, encoding="utf-8")
    ts = (NOW - age).timestamp()
    os.utime(path, (ts, ts))
    return path


def test_folder_picks_the_newest_matching_file(tmp_path: Path) -> None:
    touch(tmp_path / "2026-10-31-dee-bot.md", "old", timedelta(days=7, hours=1))
    newest = touch(tmp_path / "2026-11-07-dee-bot.md", REPORT, timedelta(minutes=5))
    touch(tmp_path / "2026-11-07-shorgan-bot.md", "other account", timedelta(minutes=1))
    touch(tmp_path / "notes.txt", "not a report", timedelta(seconds=1))
    (tmp_path / "dir-dee-bot.md").mkdir()  # a directory never counts
    source: ResearchSource = FolderResearchSource(tmp_path, "*dee-bot*.md")
    report = source.latest_report("dee-bot", now=NOW)
    check_report(report, f"folder:{newest}")
    assert report is not None
    recs = parse_report(report.text, report_date=date(2026, 11, 7)).recommendations
    assert [r.symbol for r in recs] == ["ENPH", "AMD", "TSLA"]


def test_folder_account_placeholder(tmp_path: Path) -> None:
    touch(tmp_path / "shorgan-bot.md", "x", timedelta(hours=1))
    mine = touch(tmp_path / "dee-bot.md", REPORT, timedelta(hours=2))
    source = FolderResearchSource(tmp_path, "{account}.md")
    check_report(source.latest_report("dee-bot", now=NOW), f"folder:{mine}")


@pytest.mark.parametrize(
    ("age", "used"),
    [
        (timedelta(days=6, hours=23), True),
        (timedelta(days=7), False),
        (timedelta(days=7, minutes=5), False),
        (timedelta(days=30), False),
        (-timedelta(minutes=3), True),  # written "in the future" (clock skew): still this week's
    ],
)
def test_folder_max_age(tmp_path: Path, age: timedelta, used: bool) -> None:
    path = touch(tmp_path / "r.md", REPORT, age)
    source = FolderResearchSource(tmp_path, max_age_days=7)
    report = source.latest_report("dee-bot", now=NOW)
    assert (report is not None) is used
    assert source.last_path == path
    if used:
        assert source.last_skip_reason is None
    else:
        assert source.last_skip_reason is not None
        assert "r.md" in source.last_skip_reason and "days old" in source.last_skip_reason
        assert "used for 7 days" in source.last_skip_reason


def test_last_weeks_report_is_not_used_again(tmp_path: Path) -> None:
    touch(tmp_path / "week45.md", REPORT, timedelta(minutes=5))
    source = FolderResearchSource(tmp_path)
    assert source.latest_report("dee-bot", now=NOW) is not None
    assert source.latest_report("dee-bot", now=NOW + timedelta(days=7)) is None
    assert "week45.md" in (source.last_skip_reason or "")


def test_folder_nothing_to_read(tmp_path: Path) -> None:
    source = FolderResearchSource(tmp_path, "*.md")
    assert source.latest_report("dee-bot", now=NOW) is None
    assert source.last_skip_reason == f"no file matching '*.md' in {tmp_path}"
    touch(tmp_path / "empty.md", " \n\n", timedelta(minutes=1))
    assert source.latest_report("dee-bot", now=NOW) is None
    assert "empty" in (source.last_skip_reason or "")
    touch(tmp_path / "full.md", REPORT, timedelta(seconds=1))
    assert source.latest_report("dee-bot", now=NOW) is not None
    assert source.last_skip_reason is None


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(ResearchProviderError, match="does not exist"):
        FolderResearchSource(tmp_path / "missing").latest_report("dee-bot", now=NOW)
    bad = tmp_path / "bad.md"
    bad.write_bytes(b"## PORTFOLIO REBALANCING\n\xff\xfe broken")
    os.utime(bad, (NOW.timestamp(), NOW.timestamp()))
    with pytest.raises(ResearchProviderError, match="not UTF-8"):
        FolderResearchSource(tmp_path).latest_report("dee-bot", now=NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        FolderResearchSource(tmp_path).latest_report("dee-bot", now=datetime(2026, 11, 7))
    with pytest.raises(ConfigError, match="max_age_days"):
        FolderResearchSource(tmp_path, max_age_days=0)
    assert issubclass(ResearchProviderError, RebalancerdError)


def test_folder_keeps_bytes_as_text(tmp_path: Path) -> None:
    text = "\ufeff" + REPORT.replace("\n", "\r\n")
    path = tmp_path / "crlf.md"
    path.write_bytes(text.encode("utf-8"))
    os.utime(path, (NOW.timestamp(), NOW.timestamp()))
    report = FolderResearchSource(tmp_path).latest_report("dee-bot", now=NOW)
    assert report is not None and report.text == text and report.sha256 == sha(text)
    assert len(parse_report(report.text, report_date=date(2026, 11, 7)).recommendations) == 3


# --------------------------------------------------------------------------- command

GENERATOR = r"""
import os, sys
context = sys.stdin.read()
account = os.environ["REBALANCERD_ACCOUNT"]
lines = context.splitlines()
sys.stdout.write("<!-- account=%s argv=%r -->\n" % (account, sys.argv[1:]))
sys.stdout.write("<!-- context lines=%d first=%s -->\n" % (len(lines), lines[0]))
sys.stdout.write(open(os.environ["REPORT_FILE"], encoding="utf-8").read())
"""


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(path))}"


def test_command_runs_with_context_on_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "report.md").write_text(REPORT, encoding="utf-8")
    monkeypatch.setenv("REPORT_FILE", str(tmp_path / "report.md"))
    calls: list[str] = []

    def provider(account: str) -> str:
        calls.append(account)
        return context_for(account)

    command = script(tmp_path, "gen.py", GENERATOR) + " --week 45 'two words' '$HOME;rm -rf x'"
    source: ResearchSource = CommandResearchSource(
        command, timeout_seconds=30, context_provider=provider
    )
    report = source.latest_report("dee-bot", now=NOW)
    assert calls == ["dee-bot"]
    assert report is not None
    head, context_line, rest = report.text.split("\n", 2)
    assert head == "<!-- account=dee-bot argv=['--week', '45', 'two words', '$HOME;rm -rf x'] -->"
    assert context_line == "<!-- context lines=2 first=# Portfolio context: dee-bot -->"
    assert rest == REPORT
    check_report(report, f"command:{command}", text=report.text)


def test_command_timeout_kills_the_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    body = f"""
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
open({str(pid_file)!r}, "w").write(str(child.pid))
print("partial report", flush=True)
time.sleep(60)
"""
    source = CommandResearchSource(
        script(tmp_path, "slow.py", body), timeout_seconds=1.0, context_provider=context_for
    )
    start = time.monotonic()
    with pytest.raises(ResearchProviderError, match=r"timed out after 1 s"):
        source.latest_report("dee-bot", now=NOW)
    assert time.monotonic() - start < 10
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(grandchild):
        time.sleep(0.05)
    assert not _alive(grandchild), "the grandchild outlived the timeout"


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return "Z" not in state.split()[1]  # a zombie waiting for init to reap it is dead


def test_command_failure_reports_exit_code_and_last_stderr_line(tmp_path: Path) -> None:
    body = """
import sys
sys.stderr.write("warming up\\nfatal: no data for dee-bot\\n\\n")
sys.exit(3)
"""
    source = CommandResearchSource(
        script(tmp_path, "fail.py", body), timeout_seconds=30, context_provider=context_for
    )
    with pytest.raises(ResearchProviderError) as info:
        source.latest_report("dee-bot", now=NOW)
    assert "exit code 3: fatal: no data for dee-bot" in str(info.value)


def test_command_killed_by_a_signal(tmp_path: Path) -> None:
    body = "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n"
    source = CommandResearchSource(
        script(tmp_path, "sig.py", body), timeout_seconds=30, context_provider=context_for
    )
    with pytest.raises(
        ResearchProviderError, match=r"exit code -15 \(killed by SIGTERM\): \(no stderr output\)"
    ):
        source.latest_report("dee-bot", now=NOW)


def test_command_that_ignores_stdin_and_prints_nothing(tmp_path: Path) -> None:
    source = CommandResearchSource(
        script(tmp_path, "quiet.py", "pass\n"),
        timeout_seconds=30,
        context_provider=lambda a: "x" * 2_000_000,
    )
    assert source.latest_report("dee-bot", now=NOW) is None
    assert "printed no report" in (source.last_skip_reason or "")


def test_command_errors(tmp_path: Path) -> None:
    missing = CommandResearchSource(
        str(tmp_path / "no-such-generator"), timeout_seconds=5, context_provider=context_for
    )
    with pytest.raises(ResearchProviderError, match="cannot run research command"):
        missing.latest_report("dee-bot", now=NOW)
    binary = CommandResearchSource(
        script(tmp_path, "bin.py", "import sys\nsys.stdout.buffer.write(b'\\xff\\xfe')\n"),
        timeout_seconds=30,
        context_provider=context_for,
    )
    with pytest.raises(ResearchProviderError, match="non-UTF-8"):
        binary.latest_report("dee-bot", now=NOW)
    with pytest.raises(ConfigError, match="cannot split"):
        CommandResearchSource("python 'unclosed", timeout_seconds=5, context_provider=context_for)
    with pytest.raises(ConfigError, match="command"):
        CommandResearchSource("   ", timeout_seconds=5, context_provider=context_for)
    with pytest.raises(ConfigError, match="timeout_seconds"):
        CommandResearchSource("true", timeout_seconds=0, context_provider=context_for)


# --------------------------------------------------------------------------- anthropic


@dataclass
class FakeMessagesApi:
    """A scripted ``POST /v1/messages``: each request pops the next response."""

    responses: list[tuple[int, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    delay: float = 0.0
    url: str = ""

    def answer(self, text: str, stop_reason: str = "end_turn", model: str = "claude-test") -> None:
        body = {
            "id": "msg_01TEST",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}] if text else [],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": 120, "output_tokens": 80},
        }
        self.responses.append((200, body, {}))

    def fail(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        body = {"type": "error", "error": {"type": "api_error", "message": message}}
        self.responses.append((status, body, headers or {}))


_ENV_TO_CLEAR = (
    *("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"),
    *("ANTHROPIC_BASE_URL", "ANTHROPIC_CUSTOM_HEADERS", "ANTHROPIC_API_KEY"),
)


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMessagesApi]:
    for name in _ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    api = FakeMessagesApi()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            api.requests.append(
                {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "json": json.loads(raw or b"{}"),
                }
            )
            if api.delay:
                time.sleep(api.delay)
            if self.path.split("?")[0] != "/v1/messages" or not api.responses:
                error = {"type": "not_found_error", "message": "no"}
                status, body, headers = 404, {"type": "error", "error": error}, {}
            else:
                status, body, headers = api.responses.pop(0)
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("request-id", "req_test")
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


def sent_key(request: dict[str, Any]) -> str | None:
    """The API key the SDK sent: ``x-api-key`` (SDK < 2) or ``Authorization: Bearer`` (2.x)."""
    headers = request["headers"]
    if "x-api-key" in headers:
        return str(headers["x-api-key"])
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" else None


PROMPT = 'Account {account}. Weekly review.\n\n{context}\n\nJSON stays intact: {"a": 1}'


def anthropic_source(api: FakeMessagesApi, **kw: Any) -> AnthropicResearchSource:
    args: dict[str, Any] = {
        "api_key": SecretStr(API_KEY),
        "model": "claude-test",
        "prompt_template": PROMPT,
        "context_provider": context_for,
        "base_url": api.url,
        "timeout": 10,
        "max_retries": 0,
    }
    args.update(kw)
    return AnthropicResearchSource(**args)


def test_anthropic_report(fake_api: FakeMessagesApi) -> None:
    fake_api.answer(REPORT)
    source: ResearchSource = anthropic_source(fake_api, max_tokens=4000)
    report = source.latest_report("dee-bot", now=NOW)
    check_report(report, "anthropic:claude-test")
    (request,) = fake_api.requests
    assert request["path"] == "/v1/messages"
    assert sent_key(request) == API_KEY
    assert "anthropic-version" in request["headers"]
    body = request["json"]
    assert body["model"] == "claude-test" and body["max_tokens"] == 4000
    (message,) = body["messages"]
    assert message["role"] == "user"
    content = message["content"]
    text = content if isinstance(content, str) else "".join(part["text"] for part in content)
    assert text == (
        "Account dee-bot. Weekly review.\n\n"
        + context_for("dee-bot")
        + '\n\nJSON stays intact: {"a": 1}'
    )
    assert report is not None
    recs = parse_report(report.text, report_date=date(2026, 11, 7)).recommendations
    assert [(r.symbol, r.action) for r in recs] == [
        ("ENPH", Action.EXIT),
        ("AMD", Action.TRIM),
        ("TSLA", Action.BUY),
    ]


def test_anthropic_plain_string_key(fake_api: FakeMessagesApi) -> None:
    fake_api.answer(REPORT)
    report = anthropic_source(fake_api, api_key=API_KEY).latest_report("dee-bot", now=NOW)
    assert report is not None
    assert sent_key(fake_api.requests[0]) == API_KEY


def test_anthropic_server_error_after_retries(fake_api: FakeMessagesApi) -> None:
    for _ in range(2):
        fake_api.fail(500, "internal meltdown", {"retry-after-ms": "10"})
    source = anthropic_source(fake_api, max_retries=1)
    start = time.monotonic()
    with pytest.raises(ResearchProviderError) as info:
        source.latest_report("dee-bot", now=NOW)
    assert time.monotonic() - start < 5
    assert len(fake_api.requests) == 2  # the first try and one retry
    message = str(info.value)
    assert "HTTP 500" in message and "claude-test" in message
    assert API_KEY not in message and API_KEY not in repr(source)


def test_anthropic_retry_then_success(fake_api: FakeMessagesApi) -> None:
    fake_api.fail(529, "overloaded", {"retry-after-ms": "10"})
    fake_api.answer(REPORT)
    report = anthropic_source(fake_api, max_retries=2).latest_report("dee-bot", now=NOW)
    check_report(report, "anthropic:claude-test")
    assert len(fake_api.requests) == 2


def test_anthropic_client_error_is_not_retried(fake_api: FakeMessagesApi) -> None:
    fake_api.fail(401, "invalid x-api-key")
    with pytest.raises(ResearchProviderError, match="HTTP 401"):
        anthropic_source(fake_api, max_retries=2).latest_report("dee-bot", now=NOW)
    assert len(fake_api.requests) == 1


def test_anthropic_truncated_answer_is_refused(fake_api: FakeMessagesApi) -> None:
    fake_api.answer(REPORT[:80], stop_reason="max_tokens")
    with pytest.raises(ResearchProviderError, match="stop_reason='max_tokens'"):
        anthropic_source(fake_api).latest_report("dee-bot", now=NOW)


def test_anthropic_empty_answer(fake_api: FakeMessagesApi) -> None:
    fake_api.answer("")
    source = anthropic_source(fake_api)
    assert source.latest_report("dee-bot", now=NOW) is None
    assert source.last_skip_reason == "model 'claude-test' returned no text"


def test_anthropic_timeout(fake_api: FakeMessagesApi) -> None:
    fake_api.delay = 3
    fake_api.answer(REPORT)
    start = time.monotonic()
    with pytest.raises(ResearchProviderError, match=r"did not answer within 0\.5 s"):
        anthropic_source(fake_api, timeout=0.5).latest_report("dee-bot", now=NOW)
    assert time.monotonic() - start < 3


def test_anthropic_unreachable(fake_api: FakeMessagesApi) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    source = AnthropicResearchSource(
        API_KEY, "claude-test", PROMPT, context_for, base_url=url, max_retries=0
    )
    with pytest.raises(ResearchProviderError, match="cannot reach"):
        source.latest_report("dee-bot", now=NOW)


def test_anthropic_configuration_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"prompt_template: must contain \{context\}"):
        AnthropicResearchSource(API_KEY, "claude-test", "no placeholder", context_for)
    with pytest.raises(ConfigError, match="API key is empty"):
        AnthropicResearchSource(SecretStr(""), "claude-test", PROMPT, context_for)
    monkeypatch.setitem(sys.modules, "anthropic", None)  # as if the extra were not installed
    with pytest.raises(ConfigError, match=r"pip install 'rebalancerd\[anthropic\]'"):
        AnthropicResearchSource(API_KEY, "claude-test", PROMPT, context_for)


def test_importing_the_package_does_not_import_anthropic() -> None:
    code = (
        "import sys; import rebalancerd.adapters.research as r; "
        "assert 'anthropic' not in sys.modules, 'imported'; "
        "print(r.AnthropicResearchSource.__name__)"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "AnthropicResearchSource"
