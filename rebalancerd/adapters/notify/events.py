"""What the daemon tells the operator, as one method per event type.

Jobs, the daemon and the research service call these methods; each builds a
short human ``text`` (Slack shows it as the message) plus structured fields,
and hands both to a ``Notifier``. Every method swallows and logs failures:
telling the operator about a job must never be the reason the job fails.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import structlog

from rebalancerd.domain.model import Status
from rebalancerd.ports import DecisionRecord, Notifier

log = structlog.get_logger(__name__)

APPROVAL_PENDING = "approval_pending"
EXIT_EXECUTED = "exit_executed"
EXIT_REJECTED = "exit_rejected"
JOB_FAILED = "job_failed"
RUN_MISSED = "run_missed"
REPORT_REJECTED = "report_rejected"
DAEMON_STARTED = "daemon_started"
DAEMON_STOPPED = "daemon_stopped"

#: Every event type, the vocabulary of ``[notifications] events``.
EVENT_TYPES = (
    APPROVAL_PENDING,
    EXIT_EXECUTED,
    EXIT_REJECTED,
    JOB_FAILED,
    RUN_MISSED,
    REPORT_REJECTED,
    DAEMON_STARTED,
    DAEMON_STOPPED,
)

_EXECUTED = frozenset({Status.FILLED, Status.PARTIALLY_FILLED})


class Closable(Protocol):
    def close(self, timeout: float = ...) -> None: ...


class NullNotifier:
    """Notifications switched off: every event is dropped silently."""

    def notify(self, event: str, payload: Mapping[str, Any]) -> None:
        return None

    def close(self, timeout: float = 5.0) -> None:
        return None


def _line(d: DecisionRecord) -> str:
    reasons = ", ".join(d.reasons) or "-"
    return f"#{d.id} {d.action.value} {d.qty} {d.symbol} ({reasons})"


class Notifications:
    """The event vocabulary over any ``Notifier``; never raises."""

    def __init__(self, notifier: Notifier, tz: ZoneInfo):
        self.notifier, self.tz = notifier, tz

    def notify(self, event: str, payload: Mapping[str, Any]) -> None:
        try:
            self.notifier.notify(event, payload)
        except Exception as exc:  # the notifier's own bug must not reach a job
            log.warning("notification_failed", event_type=event, error=repr(exc)[:200])

    def close(self, timeout: float = 5.0) -> None:
        close = getattr(self.notifier, "close", None)
        if close is not None:
            try:
                close(timeout)
            except Exception as exc:
                log.warning("notifier_close_failed", error=repr(exc)[:200])

    def _local(self, at: datetime | None) -> str | None:
        return at.astimezone(self.tz).isoformat() if at is not None else None

    # ------------------------------------------------------------------ events

    def approval_pending(self, account: str, decisions: Sequence[DecisionRecord]) -> None:
        pending = [d for d in decisions if d.status is Status.PENDING_APPROVAL]
        if not pending:
            return
        lines = "\n".join(_line(d) for d in pending)
        first = pending[0].execute_at.astimezone(self.tz).strftime("%a %Y-%m-%d %H:%M")
        text = (
            f"{account}: {len(pending)} decision(s) wait for approval before {first}:\n{lines}\n"
            f"`rebalancerd approve ID` or `rebalancerd reject ID`"
        )
        self.notify(
            APPROVAL_PENDING,
            {"text": text, "account": account, "decision_ids": [d.id for d in pending]},
        )

    def exits_settled(self, account: str, decisions: Sequence[DecisionRecord]) -> None:
        """One message for the executed exits and one for the rejected ones, if any."""
        executed = [d for d in decisions if d.status in _EXECUTED]
        rejected = [d for d in decisions if d.status is Status.REJECTED]
        if executed:
            text = f"{account}: executed\n" + "\n".join(
                f"{_line(d)} {d.status.value}" for d in executed
            )
            ids = [d.id for d in executed]
            self.notify(EXIT_EXECUTED, {"text": text, "account": account, "decision_ids": ids})
        if rejected:
            self.decisions_rejected(account, rejected, by="broker")

    def decisions_rejected(
        self, account: str, decisions: Sequence[DecisionRecord], *, by: str
    ) -> None:
        if not decisions:
            return
        text = f"{account}: rejected by {by}\n" + "\n".join(_line(d) for d in decisions)
        ids = [d.id for d in decisions]
        self.notify(
            EXIT_REJECTED, {"text": text, "account": account, "by": by, "decision_ids": ids}
        )

    def job_failed(self, job: str, account: str | None, error: str) -> None:
        where = f"{account}: " if account else ""
        self.notify(
            JOB_FAILED,
            {
                "text": f"{where}job {job} failed: {error}",
                "job": job,
                "account": account,
                "error": error,
            },
        )

    def run_missed(self, job: str, scheduled_at: datetime, policy: str) -> None:
        when = self._local(scheduled_at)
        self.notify(
            RUN_MISSED,
            {
                "text": f"job {job} missed its run at {when} ({policy})",
                "job": job,
                "scheduled_at": when,
                "policy": policy,
            },
        )

    def report_rejected(self, account: str, source: str, error: str) -> None:
        self.notify(
            REPORT_REJECTED,
            {
                "text": f"{account}: research report {source} rejected, nothing from it will "
                f"execute: {error}",
                "account": account,
                "source": source,
                "error": error,
            },
        )

    def daemon_started(self, accounts: Sequence[str]) -> None:
        self.notify(
            DAEMON_STARTED,
            {
                "text": f"rebalancerd started ({', '.join(accounts) or 'no accounts'})",
                "accounts": list(accounts),
            },
        )

    def daemon_stopped(self, reason: str) -> None:
        self.notify(DAEMON_STOPPED, {"text": f"rebalancerd stopped: {reason}", "reason": reason})
