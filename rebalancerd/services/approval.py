"""The approval queue: operators approve or reject pending decisions; stale ones expire.

Approving re-reads the broker first. A decision to sell 100 shares must not be
approved once the position is gone or its size changed (a manual sale, a stop
that fired): the operator would be approving numbers that no longer exist, so
the approval is refused with the reason and the decision stays pending.

A pending decision nobody approved before its execution window closed (the
market close of its execution day) expires. Expiry is a releasing status, so
the store gives its weekly slot back and re-arms its profit-take level; the
next review may then propose it again with fresh numbers.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Protocol
from zoneinfo import ZoneInfo

import structlog

from rebalancerd.domain.model import Action, Status
from rebalancerd.domain.timing import at_local, market_date
from rebalancerd.errors import InvalidTransition, UsageError
from rebalancerd.ports import BrokerPosition, DecisionFilter, DecisionRecord, Store
from rebalancerd.services.accounts import AccountContext

log = structlog.get_logger(__name__)

SYSTEM_ACTOR = "rebalancerd"
_REJECTABLE = frozenset({Status.PENDING_APPROVAL, Status.APPROVED})


class SessionCalendar(Protocol):
    def market_close(self, day: date) -> time: ...


def operator_name() -> str:
    """Who is approving: the OS user (containers may have no passwd entry)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return os.environ.get("USER") or f"uid:{os.getuid()}"


def window_end(execute_at: datetime, tz: ZoneInfo, calendar: SessionCalendar) -> datetime:
    """When a decision's execution window closes: the close of its execution day."""
    day = market_date(execute_at, tz)
    return at_local(day, calendar.market_close(day), tz)


@dataclass(frozen=True)
class Outcome:
    """What happened to one decision the operator named."""

    decision: DecisionRecord
    ok: bool
    message: str


class ApprovalService:
    def __init__(
        self,
        store: Store,
        account: Callable[[str], AccountContext],
        calendar: SessionCalendar,
        tz: ZoneInfo,
    ):
        self.store, self.account, self.calendar, self.tz = store, account, calendar, tz

    # ------------------------------------------------------------------ queries

    def pending(self, accounts: Collection[str] | None = None) -> list[DecisionRecord]:
        found = self.store.list_decisions(
            DecisionFilter(statuses=frozenset({Status.PENDING_APPROVAL}))
        )
        return [d for d in found if accounts is None or d.account in accounts]

    def lookup(self, ids: Sequence[int], accounts: Collection[str] | None) -> list[DecisionRecord]:
        """The named decisions, all or nothing: an unknown id changes nothing (exit 2)."""
        found = [self.store.get_decision(i) for i in dict.fromkeys(ids)]
        for d in found:
            if accounts is not None and d.account not in accounts:
                raise UsageError(
                    f"decision {d.id} belongs to account {d.account!r}, "
                    f"not to {', '.join(sorted(accounts))}"
                )
        return found

    # ------------------------------------------------------------------ commands

    def approve(
        self,
        ids: Sequence[int],
        *,
        actor: str,
        now: datetime,
        accounts: Collection[str] | None = None,
    ) -> list[Outcome]:
        targets = self.lookup(ids, accounts)
        self.expire_due(now)
        return self._approve_each([self.store.get_decision(d.id) for d in targets], actor, now)

    def approve_all(self, accounts: Collection[str], *, actor: str, now: datetime) -> list[Outcome]:
        self.expire_due(now)
        return self._approve_each(self.pending(accounts), actor, now)

    def reject(
        self,
        ids: Sequence[int],
        *,
        actor: str,
        now: datetime,
        reason: str | None = None,
        accounts: Collection[str] | None = None,
    ) -> list[Outcome]:
        outcomes = []
        for d in self.lookup(ids, accounts):
            if d.status not in _REJECTABLE:
                outcomes.append(self._refused(d, f"is {d.status.value}; only pending or approved"))
                continue
            note = f"rejected by {actor}" + (f": {reason}" if reason else "")
            outcomes.append(self._move(d, Status.REJECTED, actor, now, note))
        return outcomes

    def expire_due(
        self, now: datetime, accounts: Collection[str] | None = None
    ) -> list[DecisionRecord]:
        """Expire pending decisions whose execution window has closed; their slots go back."""
        expired = []
        for d in self.pending(accounts):
            end = window_end(d.execute_at, self.tz, self.calendar)
            if now < end:
                continue
            note = f"not approved before the window closed at {end.isoformat()}"
            try:
                record = self.store.transition(
                    d.id, Status.EXPIRED, at=now, actor=SYSTEM_ACTOR, note=note
                )
            except InvalidTransition:
                continue  # approved or rejected by someone else meanwhile
            log.info("decision_expired", decision_id=d.id, account=d.account, symbol=d.symbol)
            expired.append(record)
        return expired

    # ------------------------------------------------------------------ helpers

    def _approve_each(
        self, targets: Sequence[DecisionRecord], actor: str, now: datetime
    ) -> list[Outcome]:
        positions: dict[str, dict[str, BrokerPosition]] = {}
        outcomes = []
        for d in targets:
            if d.status is not Status.PENDING_APPROVAL:
                outcomes.append(self._refused(d, f"is {d.status.value}, not pending approval"))
                continue
            if d.action in (Action.EXIT, Action.TRIM):
                if d.account not in positions:
                    held = self.account(d.account).broker.get_positions()
                    positions[d.account] = {p.symbol: p for p in held}
                problem = position_changed(d, positions[d.account].get(d.symbol))
                if problem is not None:
                    outcomes.append(self._refused(d, problem))
                    continue
            outcomes.append(self._move(d, Status.APPROVED, actor, now, f"approved by {actor}"))
        return outcomes

    def _move(
        self, d: DecisionRecord, status: Status, actor: str, now: datetime, note: str
    ) -> Outcome:
        try:
            record = self.store.transition(d.id, status, at=now, actor=actor, note=note)
        except InvalidTransition as exc:
            return self._refused(d, str(exc))
        log.info(
            f"decision_{status.value}",
            decision_id=d.id,
            account=d.account,
            symbol=d.symbol,
            action=d.action.value,
            qty=str(d.qty),
            actor=actor,
        )
        return Outcome(record, True, note)

    def _refused(self, d: DecisionRecord, why: str) -> Outcome:
        message = f"decision {d.id} ({d.account} {d.action.value} {d.symbol}) {why}"
        log.warning("decision_change_refused", decision_id=d.id, reason=why)
        return Outcome(d, False, message)


def position_changed(d: DecisionRecord, held: BrokerPosition | None) -> str | None:
    """Why an exit can no longer be approved as decided, or None when it still can."""
    if held is None or held.qty == 0:
        return f"refused: {d.symbol} is no longer held at the broker"
    try:
        decided = Decimal(d.inputs.get("qty") or "")
    except InvalidOperation:
        return None  # no recorded quantity to compare against (older or manual decision)
    if decided != held.qty:
        return (
            f"refused: {d.symbol} quantity changed from {decided} to {held.qty} since the decision"
        )
    return None
