"""Decisions, their status history and the weekly slots that enforce the cap.

The cap is enforced inside the database transaction that records the
decision: claimers for one account are serialised (``BEGIN IMMEDIATE`` on
SQLite, an advisory lock on PostgreSQL), count the slot rows, and take the
lowest free slot number; the unique (account, week, slot_no) key is the
backstop should two claimers ever get past the lock.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Select, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from rebalancerd.adapters.db.engine import lock_named, raise_translated
from rebalancerd.adapters.db.models import decision_events, decisions, weekly_slots
from rebalancerd.adapters.db.rows import (
    decision_event,
    decision_record,
    json_inputs,
    json_strings,
    slot_record,
)
from rebalancerd.adapters.db.store_base import StoreBase
from rebalancerd.domain.model import Action, SkipReason, Status
from rebalancerd.domain.status import OPEN, RELEASING, SLOT_HOLDING, can_transition
from rebalancerd.errors import InvalidTransition, NotFound
from rebalancerd.ports import (
    CapClaim,
    DecisionEvent,
    DecisionFilter,
    DecisionRecord,
    NewDecision,
    SlotRecord,
)

#: Attempts at recording a decision when the slot key reports a collision.
CLAIM_ATTEMPTS = 5


def slot_lock_name(account: str) -> str:
    return f"rebalancerd-slots:{account}"


def _decision_query() -> Select[tuple[object, ...]]:
    """Decisions with the week of the slot they hold (None when they hold none)."""
    joined = decisions.outerjoin(weekly_slots, weekly_slots.c.decision_id == decisions.c.id)
    return select(decisions, weekly_slots.c.week_start.label("slot_week")).select_from(joined)


class DecisionStore(StoreBase):
    """The decision half of :class:`~rebalancerd.adapters.db.store.SqlStore`."""

    # ------------------------------------------------------------------ writes

    def record_decision(self, new: NewDecision, claim: CapClaim | None) -> DecisionRecord:
        """Persist a decision, its history and (if claimed and free) a weekly slot."""
        if new.status is not Status.PROPOSED and not can_transition(Status.PROPOSED, new.status):
            raise InvalidTransition(
                f"a new decision cannot start as {new.status.value}: "
                f"{Status.PROPOSED.value} -> {new.status.value} is not allowed"
            )
        for attempt in range(1, CLAIM_ATTEMPTS + 1):
            try:
                with self.engine.begin() as conn:
                    decision_id = self._record_once(conn, new, claim)
                    return self._load(conn, decision_id)
            except IntegrityError as exc:
                if attempt == CLAIM_ATTEMPTS:
                    raise_translated(exc, self.engine.url, "cannot record decision")
            except SQLAlchemyError as exc:
                raise_translated(exc, self.engine.url, "cannot record decision")
        raise AssertionError("unreachable")  # pragma: no cover

    def _record_once(self, conn: Connection, new: NewDecision, claim: CapClaim | None) -> int:
        self._ensure_account(conn, new.account, new.created_at)
        status, skip_reason, note = new.status, new.skip_reason, None
        slot_no: int | None = None
        if claim is not None and status in SLOT_HOLDING:
            slot_no = self._free_slot(conn, new.account, claim)
            if slot_no is None:
                status, skip_reason = Status.SKIPPED, SkipReason.WEEKLY_CAP_REACHED
                note = f"weekly cap of {claim.cap} reached for week of {claim.week_start}"
        decision_id = self._insert_decision(conn, new, status, skip_reason)
        if slot_no is not None and claim is not None:
            self._insert_slot(conn, new, claim.week_start, slot_no, decision_id)
        self._append_event(conn, decision_id, Status.PROPOSED, new.created_at, new.actor)
        if status is not Status.PROPOSED:
            self._append_event(conn, decision_id, status, new.created_at, new.actor, note)
        if new.profit_level and status not in RELEASING and status is not Status.DRY_RUN:
            self._set_profit_level(conn, new.account, new.symbol, new.profit_level, taken=True)
        return decision_id

    def _free_slot(self, conn: Connection, account: str, claim: CapClaim) -> int | None:
        """Lowest free slot number of the week, None when the cap is reached."""
        lock_named(conn, slot_lock_name(account))
        held = set(
            conn.execute(
                select(weekly_slots.c.slot_no).where(
                    weekly_slots.c.account == account,
                    weekly_slots.c.week_start == claim.week_start,
                )
            ).scalars()
        )
        if len(held) >= claim.cap:
            return None
        return min(n for n in range(1, claim.cap + 1) if n not in held)

    def _insert_decision(
        self,
        conn: Connection,
        new: NewDecision,
        status: Status,
        skip_reason: SkipReason | None,
    ) -> int:
        result = conn.execute(
            decisions.insert().values(
                uid=uuid.uuid4().hex,
                account=new.account,
                source=new.source.value,
                symbol=new.symbol,
                action=new.action.value,
                qty=new.qty,
                fraction=new.fraction,
                reasons=json_strings(new.reasons),
                details=json_strings(new.details),
                inputs=json_inputs(new.inputs),
                execute_at=new.execute_at,
                status=status.value,
                skip_reason=skip_reason.value if skip_reason else None,
                profit_level=new.profit_level,
                report_id=new.report_id,
                created_at=new.created_at,
                updated_at=new.created_at,
            )
        )
        pk = result.inserted_primary_key
        assert pk is not None
        return int(pk[0])

    def _insert_slot(
        self, conn: Connection, new: NewDecision, week: date, slot_no: int, decision_id: int
    ) -> None:
        conn.execute(
            weekly_slots.insert().values(
                account=new.account,
                week_start=week,
                slot_no=slot_no,
                decision_id=decision_id,
                created_at=new.created_at,
            )
        )

    def _append_event(
        self,
        conn: Connection,
        decision_id: int,
        status: Status,
        at: datetime,
        actor: str,
        note: str | None = None,
    ) -> None:
        conn.execute(
            decision_events.insert().values(
                decision_id=decision_id, status=status.value, at=at, actor=actor, note=note
            )
        )

    def transition(
        self,
        decision_id: int,
        new_status: Status,
        *,
        at: datetime,
        actor: str = "rebalancerd",
        note: str | None = None,
        skip_reason: SkipReason | None = None,
    ) -> DecisionRecord:
        """Move a decision along the status table; releasing ends free its slot."""
        with self._tx("cannot update decision") as conn:
            row = conn.execute(
                select(decisions.c.status, decisions.c.account, decisions.c.symbol)
                .add_columns(decisions.c.profit_level)
                .where(decisions.c.id == decision_id)
                .with_for_update()
            ).first()
            if row is None:
                raise NotFound(f"decision {decision_id} not found")
            current = Status(row.status)
            if not can_transition(current, new_status):
                raise InvalidTransition(
                    f"decision {decision_id}: cannot move from {current.value} "
                    f"to {new_status.value}"
                )
            values: dict[str, object] = {"status": new_status.value, "updated_at": at}
            if skip_reason is not None:
                values["skip_reason"] = skip_reason.value
            conn.execute(decisions.update().where(decisions.c.id == decision_id).values(values))
            self._append_event(conn, decision_id, new_status, at, actor, note)
            if new_status in RELEASING:
                self._release(conn, decision_id, row.account, row.symbol, row.profit_level)
            return self._load(conn, decision_id)

    def _release(
        self, conn: Connection, decision_id: int, account: str, symbol: str, level: str | None
    ) -> None:
        """Give the slot back and re-arm the profit-take level (SPEC §3, §14)."""
        conn.execute(weekly_slots.delete().where(weekly_slots.c.decision_id == decision_id))
        if level:
            self._set_profit_level(conn, account, symbol, level, taken=False)

    # ------------------------------------------------------------------ reads

    def _load(self, conn: Connection, decision_id: int) -> DecisionRecord:
        row = (
            conn.execute(_decision_query().where(decisions.c.id == decision_id)).mappings().first()
        )
        if row is None:
            raise NotFound(f"decision {decision_id} not found")
        return decision_record(row)

    def get_decision(self, decision_id: int) -> DecisionRecord:
        with self._tx("cannot read decision") as conn:
            return self._load(conn, decision_id)

    def list_decisions(self, flt: DecisionFilter) -> list[DecisionRecord]:
        """Matching decisions in id order; ``limit`` keeps the most recent ones."""
        stmt = _decision_query()
        d = decisions.c
        if flt.account is not None:
            stmt = stmt.where(d.account == flt.account)
        if flt.statuses is not None:
            stmt = stmt.where(d.status.in_([s.value for s in flt.statuses]))
        if flt.since is not None:
            stmt = stmt.where(d.created_at >= flt.since)
        if flt.symbol is not None:
            stmt = stmt.where(d.symbol == flt.symbol)
        if flt.source is not None:
            stmt = stmt.where(d.source == flt.source.value)
        if flt.ids is not None:
            stmt = stmt.where(d.id.in_(sorted(flt.ids)))
        stmt = stmt.order_by(d.id.desc())
        if flt.limit is not None:
            stmt = stmt.limit(flt.limit)
        with self._tx("cannot list decisions") as conn:
            rows = conn.execute(stmt).mappings().all()
        return [decision_record(r) for r in reversed(rows)]

    def decision_history(self, decision_id: int) -> list[DecisionEvent]:
        with self._tx("cannot read decision history") as conn:
            rows = conn.execute(
                select(decision_events)
                .where(decision_events.c.decision_id == decision_id)
                .order_by(decision_events.c.id)
            ).mappings()
            return [decision_event(r) for r in rows]

    def open_decision_symbols(self, account: str) -> set[str]:
        """Symbols with an exit, trim or entry still open (SPEC §14: one open decision
        each), so a second review neither re-proposes an exit nor queues a second buy."""
        d = decisions.c
        stmt = select(d.symbol).where(
            d.account == account,
            d.status.in_([s.value for s in OPEN]),
            d.action.in_([Action.EXIT.value, Action.TRIM.value, Action.BUY.value]),
        )
        with self._tx("cannot read open decisions") as conn:
            return set(conn.execute(stmt.distinct()).scalars())

    def slots(self, account: str, week_start: date) -> list[SlotRecord]:
        ws = weekly_slots.c
        stmt = (
            select(ws.account, ws.week_start, ws.slot_no, ws.decision_id, decisions.c.symbol)
            .join_from(weekly_slots, decisions, decisions.c.id == ws.decision_id)
            .where(ws.account == account, ws.week_start == week_start)
            .order_by(ws.slot_no)
        )
        with self._tx("cannot read weekly slots") as conn:
            return [slot_record(r) for r in conn.execute(stmt).mappings()]
