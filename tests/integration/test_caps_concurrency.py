"""The weekly cap holds in the database: racing threads, processes and restarts.

SPEC §3: the cap must hold across process restarts, repeated runs and two
processes racing on the same database. Every claimer here has its own engine,
so nothing is shared in memory; only the database can keep them honest.
"""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select
from sqlalchemy.engine import Engine

from rebalancerd.adapters.db.engine import make_engine
from rebalancerd.adapters.db.models import weekly_slots
from rebalancerd.adapters.db.store import SqlStore
from rebalancerd.domain.model import Action, SkipReason, Source, Status
from rebalancerd.domain.status import SLOT_HOLDING, can_transition
from rebalancerd.errors import InvalidTransition
from rebalancerd.ports import CapClaim, DecisionFilter, NewDecision

from .conftest import WEEK, pg_url_or_skip, reset_pg_schema, sqlite_url

CAP = 2
CLAIMERS = 10
PROCESSES = 8
CREATED = datetime(2024, 11, 2, 15, 0, tzinfo=UTC)

Outcome = tuple[int, str, str | None, str | None]


def _new(symbol: str, account: str = "paper", **kw: Any) -> NewDecision:
    fields: dict[str, Any] = {
        "account": account,
        "source": Source.WEEKLY_REVIEW,
        "symbol": symbol,
        "action": Action.EXIT,
        "qty": Decimal("1"),
        "reasons": ["stale"],
        "details": [],
        "inputs": {},
        "execute_at": datetime(2024, 11, 4, 14, 30, tzinfo=UTC),
        "status": Status.APPROVED,
        "created_at": CREATED,
    }
    fields.update(kw)
    return NewDecision(**fields)


def _claim_once(url: str, index: int, wait: Callable[[], object]) -> Outcome:
    """One claimer with its own engine: connect, wait for the others, claim."""
    engine = make_engine(url)
    try:
        store = SqlStore(engine)
        wait()
        record = store.record_decision(_new(f"S{index}"), CapClaim(WEEK, CAP))
        skip = record.skip_reason.value if record.skip_reason else None
        week = record.slot_week.isoformat() if record.slot_week else None
        return record.id, record.status.value, skip, week
    finally:
        engine.dispose()


def _process_claimer(url: str, index: int, barrier: Any, results: Any) -> None:
    """Entry point of a spawned claimer process (module level, so it pickles)."""
    try:
        results.put(_claim_once(url, index, barrier.wait))
    except BaseException as exc:  # report, so the parent fails instead of hanging
        results.put(repr(exc))
        raise


def _assert_exactly_cap_held(store: SqlStore, outcomes: list[Outcome]) -> None:
    held = [o for o in outcomes if o[1] == Status.APPROVED.value]
    skipped = [o for o in outcomes if o[1] == Status.SKIPPED.value]
    assert len(held) == CAP
    assert all(o[3] == WEEK.isoformat() for o in held)
    assert len(skipped) == len(outcomes) - CAP
    assert {o[2] for o in skipped} == {SkipReason.WEEKLY_CAP_REACHED.value}
    slots = store.slots("paper", WEEK)
    assert sorted(s.slot_no for s in slots) == [1, 2]
    assert {s.decision_id for s in slots} == {o[0] for o in held}


def test_racing_threads_take_exactly_cap_slots(store: SqlStore, db_url: str) -> None:
    barrier = threading.Barrier(CLAIMERS)
    with ThreadPoolExecutor(max_workers=CLAIMERS) as pool:
        futures = [pool.submit(_claim_once, db_url, i, barrier.wait) for i in range(CLAIMERS)]
        outcomes = [f.result(timeout=60) for f in futures]
    _assert_exactly_cap_held(store, outcomes)


def test_racing_processes_take_exactly_cap_slots(tmp_path: Any) -> None:
    """Eight separate processes on one SQLite file (spawned: no inherited state)."""
    url = sqlite_url(tmp_path / "race.db")
    engine = make_engine(url)
    try:
        from rebalancerd.adapters.db.migrate import upgrade_to_head

        upgrade_to_head(engine)
        ctx = multiprocessing.get_context("spawn")
        barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
        procs = [
            ctx.Process(target=_process_claimer, args=(url, i, barrier, results))
            for i in range(PROCESSES)
        ]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        assert all(isinstance(o, tuple) for o in outcomes), outcomes
        assert [p.exitcode for p in procs] == [0] * PROCESSES
        _assert_exactly_cap_held(SqlStore(engine), outcomes)
    finally:
        engine.dispose()


def test_racing_transitions_move_a_decision_once(store: SqlStore, db_url: str) -> None:
    """Two processes submitting the same approved decision: one wins, one is refused."""
    decision = store.record_decision(_new("AAPL"), CapClaim(WEEK, CAP))
    racers = 6
    barrier = threading.Barrier(racers)

    def submit(_: int) -> str:
        engine = make_engine(db_url)
        try:
            racer = SqlStore(engine)
            barrier.wait()
            racer.transition(decision.id, Status.SUBMITTED, at=CREATED, actor="racer")
            return "moved"
        except InvalidTransition:
            return "refused"
        finally:
            engine.dispose()

    with ThreadPoolExecutor(max_workers=racers) as pool:
        results = sorted(pool.map(submit, range(racers), timeout=60))

    assert results == ["moved"] + ["refused"] * (racers - 1)
    history = [e.status for e in store.decision_history(decision.id)]
    assert history == [Status.PROPOSED, Status.APPROVED, Status.SUBMITTED]


# --------------------------------------------------------------------------- stateful


CAPPED_SOURCES = frozenset({Source.WEEKLY_REVIEW, Source.RESEARCH})
RELEASES = (Status.REJECTED, Status.CANCELLED, Status.EXPIRED, Status.SKIPPED)
NEXT = {
    Status.PENDING_APPROVAL: Status.APPROVED,
    Status.APPROVED: Status.SUBMITTED,
    Status.SUBMITTED: Status.FILLED,
}


class SlotMachine(RuleBasedStateMachine):
    """Claims, releases, progress and restarts against a model of the slots.

    Each example uses fresh account names, so examples share one migrated
    database without seeing each other's slots.
    """

    url: ClassVar[str]

    def __init__(self) -> None:
        super().__init__()
        self.engine = make_engine(self.url)
        self.store = SqlStore(self.engine)
        tag = uuid.uuid4().hex[:10]
        self.accounts = [f"a{tag}-{n}" for n in range(2)]
        self.cap = CAP
        self.slots: dict[int, tuple[str, date, int]] = {}  # decision -> (account, week, no)
        self.live: dict[int, Status] = {}  # decisions that can still move
        self.count = 0

    @initialize(cap=st.sampled_from([1, 2, 2, 3, 3]))
    def set_cap(self, cap: int) -> None:
        self.cap = cap

    def _held(self, account: str, week: date) -> set[int]:
        return {no for a, w, no in self.slots.values() if (a, w) == (account, week)}

    # Skewed towards one account and week so that claims meet the cap often.
    @rule(
        acct=st.sampled_from([0, 0, 0, 1]),
        week=st.sampled_from([0, 0, 1]),
        source=st.sampled_from(sorted(CAPPED_SOURCES)),
        approval=st.booleans(),
    )
    def claim(self, acct: int, week: int, source: Source, approval: bool) -> None:
        self._claim(acct, week, source, approval)

    @rule(
        acct=st.sampled_from([0, 0, 1]),
        source=st.sampled_from(sorted(set(Source) - CAPPED_SOURCES)),
        approval=st.booleans(),
    )
    def claim_exempt(self, acct: int, source: Source, approval: bool) -> None:
        """A source outside ``cap_sources``: the caller passes no claim."""
        self._claim(acct, 0, source, approval)

    @rule(acct=st.sampled_from([0, 0, 1]), week=st.sampled_from([0, 0, 1]))
    def fill_week(self, acct: int, week: int) -> None:
        """Claim until the week is full, and once more (which must be skipped)."""
        account, week_start = self.accounts[acct], WEEK + timedelta(weeks=week)
        for _ in range(self.cap - len(self._held(account, week_start)) + 1):
            self._claim(acct, week, Source.WEEKLY_REVIEW, approval=False)

    def _claim(self, acct: int, week: int, source: Source, approval: bool) -> None:
        account, week_start = self.accounts[acct], WEEK + timedelta(weeks=week)
        status = Status.PENDING_APPROVAL if approval else Status.APPROVED
        capped = source in CAPPED_SOURCES
        claim = CapClaim(week_start, self.cap) if capped else None
        held = self._held(account, week_start)
        self.count += 1
        record = self.store.record_decision(
            _new(f"S{self.count}", account, source=source, status=status), claim
        )
        if capped and len(held) >= self.cap:
            assert record.status is Status.SKIPPED
            assert record.skip_reason is SkipReason.WEEKLY_CAP_REACHED
            return
        assert record.status is status
        self.live[record.id] = status
        if capped:
            assert record.slot_week == week_start
            expected = min(n for n in range(1, self.cap + 1) if n not in held)
            self.slots[record.id] = (account, week_start, expected)  # released ones are reused
        else:
            assert record.slot_week is None

    @precondition(lambda self: self.live)
    @rule(pick=st.integers(0, 1000), end=st.sampled_from(RELEASES))
    def release(self, pick: int, end: Status) -> None:
        self._release(sorted(self.live), pick, end)

    @precondition(lambda self: set(self.live) & set(self.slots))
    @rule(pick=st.integers(0, 2), end=st.sampled_from(RELEASES))
    def release_slot_holder(self, pick: int, end: Status) -> None:
        """Give back one of the lowest held slots, so that later claims must reuse it."""
        holders = sorted(set(self.live) & set(self.slots), key=self.slots.__getitem__)
        self._release(holders, pick, end)

    def _release(self, candidates: list[int], pick: int, end: Status) -> None:
        decision_id = candidates[pick % len(candidates)]
        if not can_transition(self.live[decision_id], end):
            end = Status.CANCELLED
        record = self.store.transition(decision_id, end, at=CREATED)
        assert record.slot_week is None
        del self.live[decision_id]
        self.slots.pop(decision_id, None)

    @precondition(lambda self: self.live)
    @rule(pick=st.integers(0, 1000))
    def advance(self, pick: int) -> None:
        decision_id = sorted(self.live)[pick % len(self.live)]
        status = NEXT[self.live[decision_id]]
        self.store.transition(decision_id, status, at=CREATED)
        if status is Status.FILLED:
            del self.live[decision_id]  # final, and still holding its slot
        else:
            self.live[decision_id] = status

    @rule()
    def restart(self) -> None:
        self.engine.dispose()
        self.engine = make_engine(self.url)
        self.store = SqlStore(self.engine)

    @invariant()
    def database_matches_the_model(self) -> None:
        rows = self._slot_rows()
        per_week: dict[tuple[str, date], int] = {}
        for account, week, _no, _decision in rows:
            per_week[(account, week)] = per_week.get((account, week), 0) + 1
        assert all(n <= self.cap for n in per_week.values())
        assert {d: (a, w, no) for a, w, no, d in rows} == self.slots
        holding = {
            d.id
            for d in self.store.list_decisions(DecisionFilter())
            if d.account in self.accounts
            and d.source in CAPPED_SOURCES
            and d.status in SLOT_HOLDING
        }
        assert holding == set(self.slots)

    def _slot_rows(self) -> list[tuple[str, date, int, int]]:
        ws = weekly_slots.c
        stmt = select(ws.account, ws.week_start, ws.slot_no, ws.decision_id).where(
            ws.account.in_(self.accounts)
        )
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(stmt)]  # type: ignore[misc]

    def teardown(self) -> None:
        self.engine.dispose()


def _run_machine(engine: Engine, url: str, examples: int, steps: int) -> None:
    from rebalancerd.adapters.db.migrate import upgrade_to_head

    upgrade_to_head(engine)
    machine = type("BoundSlotMachine", (SlotMachine,), {"url": url})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_slot_invariants_hold_on_sqlite(tmp_path: Any) -> None:
    url = sqlite_url(tmp_path / "stateful.db")
    engine = make_engine(url)
    try:
        _run_machine(engine, url, examples=40, steps=25)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_slot_invariants_hold_on_postgres() -> None:
    url = pg_url_or_skip()
    reset_pg_schema(url)
    engine = make_engine(url)
    try:
        _run_machine(engine, url, examples=12, steps=20)
    finally:
        engine.dispose()
