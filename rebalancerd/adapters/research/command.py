"""The external-command provider: portfolio context on stdin, report on stdout."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from rebalancerd.adapters.research.base import ResearchProviderError, make_report, require_aware
from rebalancerd.errors import ConfigError
from rebalancerd.ports import ResearchReport

_MAX_STDERR = 300
_REAP_SECONDS = 5.0


class CommandResearchSource:
    """Run ``command`` (split with :func:`shlex.split`, no shell) once per call.

    The context text from ``context_provider(account)`` is written to its stdin
    as UTF-8; its stdout (UTF-8) is the report. The child gets the daemon's
    environment plus ``REBALANCERD_ACCOUNT``, runs in its own process group,
    and the whole group is killed when ``timeout_seconds`` pass.

    Timeout, a command that cannot be started, a non-zero exit (the message
    carries the exit code and the last stderr line) and non-UTF-8 output raise
    :class:`ResearchProviderError`. Empty output means "no report this week":
    ``None``, with ``last_skip_reason`` set.
    """

    def __init__(
        self,
        command: str,
        *,
        timeout_seconds: float,
        context_provider: Callable[[str], str],
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
    ) -> None:
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise ConfigError(f"cannot split {command!r}: {exc}", key="command") from exc
        if not argv:
            raise ConfigError("must not be empty", key="command")
        if not timeout_seconds > 0:
            raise ConfigError(f"must be positive, got {timeout_seconds}", key="timeout_seconds")
        self.command = command
        self.argv = argv
        self.timeout_seconds = timeout_seconds
        self.context_provider = context_provider
        self.env = env
        self.cwd = None if cwd is None else Path(cwd)
        self.last_skip_reason: str | None = None

    def __repr__(self) -> str:
        return f"CommandResearchSource({self.command!r}, timeout_seconds={self.timeout_seconds})"

    def latest_report(self, account: str, *, now: datetime) -> ResearchReport | None:
        require_aware(now)
        self.last_skip_reason = None
        context = self.context_provider(account)
        env = dict(os.environ if self.env is None else self.env)
        env["REBALANCERD_ACCOUNT"] = account
        try:
            proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=self.cwd,
                start_new_session=True,
            )
        except OSError as exc:
            raise ResearchProviderError(
                f"cannot run research command {self.command!r}: {exc.strerror or exc}"
            ) from exc
        try:
            out, err = proc.communicate(context.encode("utf-8"), timeout=self.timeout_seconds)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise ResearchProviderError(
                f"research command {self.command!r} timed out after {self.timeout_seconds:g} s"
            ) from None
        except BaseException:
            _kill_group(proc)
            raise
        if proc.returncode != 0:
            raise ResearchProviderError(
                f"research command {self.command!r} failed with exit code {proc.returncode}"
                f"{_signal_note(proc.returncode)}: {_last_line(err)}"
            )
        try:
            text = out.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ResearchProviderError(
                f"research command {self.command!r} printed non-UTF-8 output (byte {exc.start})"
            ) from None
        if not text.strip():
            self.last_skip_reason = f"research command {self.command!r} printed no report"
            return None
        return make_report(account, f"command:{self.command}", text, now)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the child and everything it started in its process group, then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    except AttributeError:  # pragma: no cover - not POSIX
        proc.kill()
    try:
        proc.communicate(timeout=_REAP_SECONDS)
    except subprocess.TimeoutExpired:  # pragma: no cover - a grandchild escaped the group
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        proc.wait(timeout=_REAP_SECONDS)


def _signal_note(returncode: int) -> str:
    if returncode >= 0:
        return ""
    try:
        return f" (killed by {signal.Signals(-returncode).name})"
    except ValueError:
        return f" (killed by signal {-returncode})"


def _last_line(stderr: bytes) -> str:
    lines = [
        line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()
    ]
    if not lines:
        return "(no stderr output)"
    last = lines[-1]
    return last if len(last) <= _MAX_STDERR else last[: _MAX_STDERR - 1] + "…"
