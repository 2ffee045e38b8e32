"""Benchmarks printed as numbers (`make bench`); never timed assertions in tests.

- rule evaluations per second over 10,000 synthetic positions;
- decisions persisted per second through the SQL store, on SQLite and, when
  TEST_DATABASE_URL is set, on PostgreSQL (each decision claims a weekly slot).
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

from sqlalchemy import text

from rebalancerd.adapters.db.engine import make_engine
from rebalancerd.adapters.db.migrate import upgrade_to_head
from rebalancerd.adapters.db.store import SqlStore
from rebalancerd.domain.model import Action, Block, Position, RuleBlock, Source, Status
from rebalancerd.domain.rules import evaluate_position
from rebalancerd.ports import CapClaim, NewDecision

TODAY = date(2026, 11, 28)


def _positions(n: int, rng: random.Random) -> list[Position]:
    out = []
    for i in range(n):
        entry = D(rng.randint(1000, 50000)) / 100
        out.append(
            Position(
                symbol=f"S{i:05d}",
                qty=D(rng.randint(1, 500)),
                avg_entry_price=entry,
                current_price=entry * D(rng.randint(70, 140)) / 100,
                opened_at=TODAY - timedelta(days=rng.randint(0, 60)),
                catalyst_date=TODAY - timedelta(days=rng.randint(-20, 20)),
            )
        )
    return out


def bench_rules(n: int = 10_000) -> float:
    rng = random.Random(7)
    positions = _positions(n, rng)
    equity = sum((p.qty * (p.current_price or D(0)) for p in positions), D(0))
    rb = RuleBlock(
        block=Block.WEEKLY,
        profit_take_pct=D("0.2"),
        loss_cut_pct=D("0.12"),
        stop_loss_pct=D("0.15"),
        stop_buffer_pct=D("0.05"),
        stale_days=21,
        stale_move_pct=D("0.05"),
        max_position_pct=D("0.0002"),
    )
    start = time.perf_counter()
    fired = sum(1 for p in positions if evaluate_position(p, rb, equity, TODAY) is not None)
    elapsed = time.perf_counter() - start
    print(
        f"rules: {n} positions evaluated in {elapsed:.3f}s"
        f" = {n / elapsed:,.0f} evaluations/s ({fired} fired)"
    )
    return n / elapsed


def bench_persist(url: str, label: str, n: int = 500) -> float:
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    upgrade_to_head(engine)
    store = SqlStore(engine)
    now = datetime(2026, 11, 28, 17, tzinfo=UTC)
    start = time.perf_counter()
    for i in range(n):
        store.record_decision(
            NewDecision(
                account="bench",
                source=Source.WEEKLY_REVIEW,
                symbol=f"S{i:05d}",
                action=Action.EXIT,
                qty=D("10"),
                reasons=["stale"],
                details=["held 30 days"],
                inputs={"plpc": "0.01"},
                execute_at=now + timedelta(days=2),
                status=Status.APPROVED,
                created_at=now,
            ),
            CapClaim(week_start=date(2026, 11, 30), cap=n // 2),
        )
    elapsed = time.perf_counter() - start
    print(
        f"persist[{label}]: {n} decisions (with slot claims) in {elapsed:.3f}s"
        f" = {n / elapsed:,.0f} decisions/s"
    )
    engine.dispose()
    return n / elapsed


def main() -> None:
    bench_rules()
    with tempfile.TemporaryDirectory() as tmp:
        bench_persist(f"sqlite:///{Path(tmp) / 'bench.db'}", "sqlite")
    pg = os.environ.get("TEST_DATABASE_URL")
    if pg:
        bench_persist(pg, "postgresql")
    else:
        print("persist[postgresql]: skipped (TEST_DATABASE_URL not set)")


if __name__ == "__main__":
    main()
