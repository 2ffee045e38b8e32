"""Crash safety of the execution: kill it anywhere, restart, nothing doubled or lost.

A crash is injected as a ``BaseException`` (nothing in the service catches it,
like SIGKILL) at every step of an execution: decision written, order
recorded, submit sent (before the request), response received (the broker
applied it, the answer is lost), status written; and around stop cancels.
After the crash a *new* service on the same database and the same broker
state runs again (and may crash again), until one run completes. Then every
decision has exactly one order at the broker, every position that is left is
protected by exactly one stop, and a further run sends nothing.

The exhaustive test kills at every step of the first run, on SQLite and
PostgreSQL; the seeded loop chains random kill points over many restarts on
the simulated broker, and a shorter loop does the same through the real
alpaca-py client against the fake Alpaca, whose duplicate-id check is switched
off so a blind resend would show up as a second order.
"""

from __future__ import annotations

import json
import random
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from rebalancerd.adapters.alpaca import AlpacaBroker
from rebalancerd.adapters.calendar import NyseCalendar
from rebalancerd.adapters.db.engine import make_engine
from rebalancerd.adapters.db.migrate import upgrade_to_head
from rebalancerd.adapters.db.store import SqlStore
from rebalancerd.adapters.sim_broker import SimBroker
from rebalancerd.config.portfolio_file import load_sim_portfolio
from rebalancerd.config.settings import AccountConfig
from rebalancerd.domain.model import Action, Status
from rebalancerd.errors import RebalancerdError
from rebalancerd.ports import Broker, DecisionRecord
from rebalancerd.services.accounts import AccountContext
from rebalancerd.services.evaluate import RunOptions
from rebalancerd.services.execute import ExecutionService
from rebalancerd.services.orders import OrderSender, client_order_id
from tests.fake_alpaca import FakeAlpaca, running_fake
from tests.fakes import FakeClock
from tests.integration.conftest import new_decision, reset_pg_schema

ACCOUNT = "paper"
NOW = datetime(2026, 11, 30, 14, 31, tzinfo=UTC)
TZ = ZoneInfo("America/New_York")
PORTFOLIO = {
    "cash": "20000",
    "positions": [
        {"symbol": "AMD", "qty": "120", "avg_entry_price": "100", "current_price": "131"},
        {"symbol": "KO", "qty": "100", "avg_entry_price": "60", "current_price": "61"},
    ],
    "open_orders": [
        {"symbol": "AMD", "side": "sell", "type": "stop", "qty": "120", "stop_price": "85"}
    ],
    "prices": {"AAPL": "200"},
}
#: (action, symbol, qty, inputs): a trim, an exit and an entry sized to 5% of equity.
DECISIONS = [
    (Action.TRIM, "AMD", D(60), {}),
    (Action.EXIT, "KO", D(100), {}),
    (Action.BUY, "AAPL", D(0), {"weight": "5"}),
]
#: What must be true at the end, whatever the crashes.
FINAL_QTY = {"AMD": D(60), "AAPL": D(10)}
FINAL_STOPS = {"AMD": (D(60), D(85)), "AAPL": (D(10), D(170))}


class Crash(BaseException):
    """The process dies here (not an Exception: nothing may catch and carry on)."""


class KillSwitch:
    """Counts the steps; raises Crash at step ``at`` (1-based)."""

    def __init__(self, at: int | None):
        self.at, self.steps = at, 0

    def step(self, name: str) -> None:
        self.steps += 1
        if self.steps == self.at:
            raise Crash(name)


class Crashing:
    """Wraps a store or broker: a kill step before and after each named call."""

    def __init__(self, inner: Any, kill: KillSwitch, steps: dict[str, tuple[str, str]]):
        self._inner, self._kill, self._steps = inner, kill, steps

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in self._steps:
            return attr
        before, after = self._steps[name]

        def call(*args: Any, **kwargs: Any) -> Any:
            self._kill.step(before)
            result = attr(*args, **kwargs)
            self._kill.step(after)
            return result

        return call


STORE_STEPS = {
    "transition": ("before decision written", "decision written"),
    "record_order": ("before order recorded", "order recorded"),
    "update_order": ("before status written", "status written"),
}
BROKER_STEPS = {
    "submit_order": ("submit sent", "response received"),
    "cancel_order": ("cancel sent", "cancel answered"),
}


@dataclass
class World:
    """One database and one broker account; services come and go (restarts)."""

    store: SqlStore
    make_broker: Callable[[], Broker]
    config: AccountConfig
    decisions: list[DecisionRecord]

    def run(self, kill_at: int | None) -> tuple[bool, int]:
        """One process lifetime: (completed, steps seen)."""
        kill = KillSwitch(kill_at)
        store = Crashing(self.store, kill, STORE_STEPS)
        broker = Crashing(self.make_broker(), kill, BROKER_STEPS)
        ctx = AccountContext(ACCOUNT, self.config, broker, TZ, NyseCalendar())
        sender = OrderSender(store, FakeClock(NOW), sleep=lambda _: None, fill_timeout=1)
        try:
            ExecutionService(store, sender).run(ctx, NOW, RunOptions(), NOW)
        except Crash:
            return False, kill.steps
        return True, kill.steps


def record_decisions(store: SqlStore) -> list[DecisionRecord]:
    return [
        store.record_decision(
            new_decision(
                account=ACCOUNT, action=action, symbol=symbol, qty=qty, inputs=inputs,
                reasons=["research"], execute_at=NOW,
            ),
            None,
        )
        for action, symbol, qty, inputs in DECISIONS
    ]  # fmt: skip


class Databases:
    """Fresh migrated databases quickly: SQLite copies a migrated template file.

    One database is live at a time: making the next one disposes the last.
    """

    def __init__(self, tmp: Path, url: str | None = None):
        self.tmp, self.url, self.n = tmp, url, 0
        self.template = tmp / "template.db"
        self.engine: Any = None
        if url is None:
            engine = make_engine(f"sqlite:///{self.template}")
            upgrade_to_head(engine)
            engine.dispose()

    def fresh(self) -> SqlStore:
        self.close()
        self.n += 1
        if self.url is None:
            path = self.tmp / f"trial-{self.n}.db"
            shutil.copy(self.template, path)
            self.engine = make_engine(f"sqlite:///{path}")
        else:
            if self.url.startswith("postgresql"):
                reset_pg_schema(self.url)
                self.engine = make_engine(self.url)
            else:
                self.engine = make_engine(f"sqlite:///{self.tmp / f'trial-{self.n}.db'}")
            upgrade_to_head(self.engine)
        return SqlStore(self.engine, now=lambda: NOW)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None


def sim_world(store: SqlStore, tmp: Path) -> World:
    path = tmp / "portfolio.json"
    path.write_text(json.dumps(PORTFOLIO))
    spec = load_sim_portfolio(path)
    config = AccountConfig(broker="sim", sim_portfolio=path, stop_loss_pct=D(15))
    return World(
        store,
        lambda: SimBroker(ACCOUNT, spec, store, FakeClock(NOW)),
        config,
        record_decisions(store),
    )


# ------------------------------------------------------------------ checking


def sim_orders(store: SqlStore) -> list[dict[str, Any]]:
    state = store.load_sim_state(ACCOUNT)
    assert state is not None
    return list(state["orders"].values())


def check_sim(world: World) -> int:
    """The end state; returns the number of duplicate orders found (asserted 0)."""
    orders = sim_orders(world.store)
    return check(
        world,
        [(o["client_order_id"], o["symbol"], o["type"], o["status"]) for o in orders],
        {sym: D(p["qty"]) for sym, p in world.store.load_sim_state(ACCOUNT)["positions"].items()},  # type: ignore[index]
        [(o["symbol"], D(o["qty"]), D(o["stop_price"])) for o in orders
         if o["type"] == "stop" and o["status"] == "new"],
    )  # fmt: skip


def check(
    world: World,
    orders: list[tuple[str, str, str, str]],
    positions: dict[str, D],
    open_stops: list[tuple[str, D, D]],
) -> int:
    market = Counter(cid for cid, _, kind, _ in orders if kind == "market")
    duplicates = sum(n - 1 for n in market.values()) + sum(
        1 for d in world.decisions if market[client_order_id(d.uid)] == 0
    )
    duplicates += len(market) - len(world.decisions)  # a market order nobody decided
    assert duplicates == 0, orders
    for d in world.decisions:
        assert world.store.get_decision(d.id).status is Status.FILLED
    assert positions == FINAL_QTY
    assert sorted(open_stops) == sorted((s, q, p) for s, (q, p) in FINAL_STOPS.items())
    assert world.store.unresolved_orders(ACCOUNT) == [] or all(
        o.type.value == "stop" for o in world.store.unresolved_orders(ACCOUNT)
    )
    return duplicates


def run_until_done(world: World, kills: Iterator[int | None], max_runs: int = 12) -> int:
    """Restart after each crash; returns the number of crashes."""
    crashes = 0
    for _ in range(max_runs):
        done, _steps = world.run(next(kills, None))
        if done:
            return crashes
        crashes += 1
    done, _steps = world.run(None)
    assert done
    return crashes


# ------------------------------------------------------------------ tests


def test_an_uninterrupted_run_executes_everything_once(tmp_path: Path, db_url: str) -> None:
    dbs = Databases(tmp_path, db_url)
    world = sim_world(dbs.fresh(), tmp_path)
    done, steps = world.run(None)
    assert done and steps > 10
    check_sim(world)
    before = sim_orders(world.store)
    assert world.run(None) == (True, 0)  # nothing left to do, nothing sent
    assert sim_orders(world.store) == before
    dbs.close()


def test_a_crash_at_every_step_of_the_first_run_is_recovered(tmp_path: Path, db_url: str) -> None:
    dbs = Databases(tmp_path, db_url)
    _, steps = sim_world(dbs.fresh(), tmp_path).run(None)
    for k in range(1, steps + 1):
        world = sim_world(dbs.fresh(), tmp_path)
        done, _ = world.run(k)
        assert not done, k
        assert world.run(None)[0], k
        assert check_sim(world) == 0, k
        before = sim_orders(world.store)
        assert world.run(None)[0] and sim_orders(world.store) == before, k
    print(f"\ncrash safety (exhaustive, {db_url.split(':')[0]}): kill points tried={steps}, "
          "duplicates found=0, lost=0")  # fmt: skip
    dbs.close()


def test_random_chains_of_crashes_over_many_restarts(tmp_path: Path) -> None:
    dbs = Databases(tmp_path)
    _, steps = sim_world(dbs.fresh(), tmp_path).run(None)
    rng = random.Random(20261124)
    trials, kill_points, duplicates = 150, 0, 0
    for _ in range(trials):
        world = sim_world(dbs.fresh(), tmp_path)
        plan = [rng.randint(1, steps)]  # the first run always dies, later ones may too
        plan += [rng.randint(1, steps) if rng.random() < 0.6 else None for _ in range(7)]
        kill_points += run_until_done(world, iter(plan))
        duplicates += check_sim(world)
    print(
        f"\ncrash safety (random, sim broker): trials={trials}, "
        f"kill points tried={kill_points}, duplicates found={duplicates}, lost=0"
    )
    assert kill_points >= trials
    dbs.close()


# ------------------------------------------------------------------ fake Alpaca


@pytest.fixture
def fake() -> Iterator[FakeAlpaca]:
    with running_fake(slow_seconds=0.3) as server:
        yield server


def seed_fake(fake: FakeAlpaca) -> None:
    st = fake.state
    st.cash = D("20000")
    st.add_position("AMD", D(120), D(100), D(131))
    st.add_position("KO", D(100), D(60), D(61))
    st.set_price("AAPL", D(200))
    stop = {"symbol": "AMD", "qty": "120", "side": "sell", "type": "stop"}
    st.place_order({**stop, "time_in_force": "gtc", "stop_price": "85", "client_order_id": "m"})
    # A blind resend must show up as a second order, not be caught by the fake.
    st.unique_client_order_ids = False


def alpaca_world(fake: FakeAlpaca, store: SqlStore) -> World:
    def broker() -> Broker:
        return AlpacaBroker(
            fake.api_key, fake.secret_key, base_url=fake.base_url, timeout=0.15,
            sleep=lambda _: None, fill_history=False,
        )  # fmt: skip

    config = AccountConfig(broker="alpaca", stop_loss_pct=D(15))
    return World(store, broker, config, record_decisions(store))


def check_fake(world: World, fake: FakeAlpaca) -> int:
    st = fake.state
    return check(
        world,
        [(o.client_order_id, o.symbol, o.type, o.status) for o in st.orders.values()],
        {s: p.qty for s, p in st.positions.items()},
        [(o.symbol, o.qty, o.stop_price) for o in st.orders.values()
         if o.type == "stop" and o.is_open],
    )  # fmt: skip


def test_random_crashes_through_alpaca_py_against_the_fake(
    tmp_path: Path, fake: FakeAlpaca
) -> None:
    dbs = Databases(tmp_path)
    rng = random.Random(7)
    trials, kill_points, duplicates = 12, 0, 0
    for _ in range(trials):
        fake.state.__init__()  # type: ignore[misc]  # a fresh account on the same server
        seed_fake(fake)
        world = alpaca_world(fake, dbs.fresh())
        plan = [rng.randint(1, 40)] + [rng.randint(1, 40) if rng.random() < 0.6 else None] * 5
        kill_points += run_until_done(world, iter(plan))
        duplicates += check_fake(world, fake)
    print(
        f"\ncrash safety (random, fake Alpaca): trials={trials}, "
        f"kill points tried={kill_points}, duplicates found={duplicates}"
    )
    dbs.close()


def test_twenty_percent_faults_every_order_exactly_once(tmp_path: Path, fake: FakeAlpaca) -> None:
    """429 / 5xx / timeouts / dropped connections on 20% of requests; a run that fails
    is retried (as the scheduler's retry policy does) until one completes."""
    dbs = Databases(tmp_path)
    seeds, failed_runs, duplicates = 8, 0, 0
    for seed in range(seeds):
        fake.state.__init__()  # type: ignore[misc]  # a fresh account on the same server
        seed_fake(fake)
        world = alpaca_world(fake, dbs.fresh())
        fake.fault_rate(0.2, seed=seed)
        for _ in range(10):
            try:
                if world.run(None)[0]:
                    break
            except RebalancerdError:
                failed_runs += 1
        fake.fault_rate(0.0)
        assert world.run(None)[0]
        duplicates += check_fake(world, fake)
    faults = sum(1 for r in fake.log if r.fault)
    kinds = sorted({r.fault for r in fake.log if r.fault})
    print(
        f"\nfaults (20%): accounts={seeds}, requests={len(fake.log)}, faulted={faults} {kinds}, "
        f"failed runs retried={failed_runs}, duplicates found={duplicates}"
    )
    assert faults > 20 and duplicates == 0
    dbs.close()
