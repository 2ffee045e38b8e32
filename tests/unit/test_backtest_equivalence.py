"""The backtest trades like the daemon: same bars, same account, same fills.

The live services (weekly review, daily guards, execution) run day by day on
the simulated broker and a SQLite store, with prices set to each day's open
before the 09:30 execution and to its close before the 16:30 guards; the
backtest replays the same bars. Both start from the same four positions bought
at the close of Monday 2 February 2026 (no protective stops: the simulated
broker's stop orders never trigger). The account is hybrid with a weekly cap of
one, so profit-take trims, a loss cut, stale exits and the cap all happen.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, time
from decimal import Decimal as D
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from rebalancerd.adapters.sim_broker import SimBroker
from rebalancerd.backtest.data import load_bars, load_entries
from rebalancerd.backtest.engine import run_policy
from rebalancerd.backtest.policy import from_account
from rebalancerd.backtest.records import RunResult
from rebalancerd.composition import build_app, build_broker
from rebalancerd.config.models import AccountConfig
from rebalancerd.config.settings import load_settings
from rebalancerd.domain.model import OrderStatus, OrderType
from rebalancerd.ports import Broker, BrokerOrder, Clock, OrderRequest, Store
from rebalancerd.services.jobs import Jobs
from tests.fakes import FakeClock

NY = ZoneInfo("America/New_York")
DAYS = [date(2026, 2, d) for d in (2, 3, 4, 5, 6, 9, 10, 11, 12, 13)]
# (open, close) per day; high/low bracket them. Entry closes on the 2nd: 100, 50, 20, 30.
PRICES = {
    "AAA": [(99, 100), (101, 105), (106, 121), (122, 123), (123, 124), (124, 125),
            (125, 124), (124, 126), (126, 127), (127, 128)],
    "BBB": [(50, 50), (49, 48), (47, 46), (46, 44.5), (44, 44), (44, 44),
            (44, 44), (44, 44), (44, 44), (44, 44)],
    "CCC": [(20, 20), (20, 20.1), (20.1, 20.2), (20.2, 20.3), (20.3, 20.4), (20.4, 20.3),
            (20.3, 20.2), (20.2, 20.1), (20.1, 20.0), (20.0, 20.1)],
    "DDD": [(30, 30), (30, 30.2), (30.2, 30.1), (30.1, 30.3), (30.3, 30.4), (30.4, 30.5),
            (30.5, 30.4), (30.4, 30.3), (30.3, 30.2), (30.2, 30.1)],
}  # fmt: skip
WEIGHTS = {"AAA": 30, "BBB": 25, "CCC": 20, "DDD": 20}
CASH = D(10_000)

CONFIG = """
database_url = "sqlite:///{db}"
[accounts.eq]
broker = "sim"
sim_portfolio = "{portfolio}"
mode = "hybrid"
max_exits_per_week = 1
[accounts.eq.weekly]
stale_days = 3
stale_move_pct = 5
max_position_pct = 40
[accounts.eq.daily]
profit_take_pct = 20
profit_take_fraction = 0.5
loss_cut_pct = 10
"""


def write_inputs(tmp_path: Path) -> tuple[Path, Path]:
    lines = ["date,symbol,open,high,low,close,volume"]
    for i, day in enumerate(DAYS):
        for symbol, rows in PRICES.items():
            o, c = rows[i]
            lines.append(f"{day},{symbol},{o},{max(o, c)},{min(o, c)},{c},1000")
    bars = tmp_path / "bars.csv"
    bars.write_text("\n".join(lines) + "\n")
    entries = tmp_path / "entries.csv"
    rows = [f"{DAYS[0]},{s},{w}" for s, w in WEIGHTS.items()]
    entries.write_text("date,symbol,weight\n" + "\n".join(rows) + "\n")
    return bars, entries


class RecordingBroker:
    """The simulated broker, noting every market order's fill on the clock's date."""

    def __init__(self, inner: SimBroker, clock: FakeClock) -> None:
        self.inner, self.clock = inner, clock
        self.fills: list[tuple[date, str, str, D, D | None]] = []

    def submit_order(self, request: OrderRequest) -> BrokerOrder:
        order = self.inner.submit_order(request)
        if order.type is OrderType.MARKET and order.status is OrderStatus.FILLED:
            day = self.clock.now().astimezone(NY).date()
            fill = (day, order.symbol, order.side.value, order.filled_qty, order.filled_avg_price)
            self.fills.append(fill)
        return order

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=NY)


def live_and_backtest(tmp_path: Path) -> tuple[Path, RecordingBroker, RunResult]:
    """Run both; returns the config file, the live broker's record and the backtest."""
    bars_path, entries_path = write_inputs(tmp_path)
    bars = load_bars(bars_path)

    # The backtest buys on the 2nd's close; the simulated account starts holding the same.
    portfolio = tmp_path / "portfolio.json"
    portfolio.write_text(json.dumps({"cash": str(CASH), "positions": []}))
    config = tmp_path / "rebalancerd.toml"
    config.write_text(CONFIG.format(db=tmp_path / "eq.db", portfolio=portfolio))
    settings = load_settings(config, environ={}, env_file=None)
    policy = from_account("eq", settings.accounts["eq"], settings.schedule)
    backtest = run_policy(
        bars,
        load_entries(entries_path, bars),
        policy,
        cash=CASH,
        default_weight=D("0.1"),
    )
    buys = [f for f in backtest.fills if f.side == "buy"]
    cash = CASH - sum((f.qty * f.price for f in buys), D(0))
    positions = [
        {"symbol": f.symbol, "qty": str(f.qty), "avg_entry_price": str(f.price),
         "current_price": str(f.price), "opened_at": str(DAYS[0])}
        for f in buys
    ]  # fmt: skip
    portfolio.write_text(json.dumps({"cash": str(cash), "positions": positions}))

    clock = FakeClock(at(DAYS[1], 9, 0))
    brokers: list[RecordingBroker] = []

    def factory(name: str, account: AccountConfig, store: Store, clk: Clock) -> Broker:
        brokers.append(
            RecordingBroker(cast(SimBroker, build_broker(name, account, store, clk)), clock)
        )
        return cast(Broker, brokers[-1])

    app = build_app(
        load_settings(config, environ={}, env_file=None), clock=clock, broker_factory=factory
    )
    jobs = Jobs(app)
    app.account("eq")
    broker = brokers[0]

    def set_prices(i: int, which: int) -> None:
        for symbol, rows in PRICES.items():
            broker.set_price(symbol, D(str(rows[i][which])))

    try:
        for i in range(1, len(DAYS)):
            day = DAYS[i]
            clock.set(at(day, 9, 30))
            set_prices(i, 0)
            assert jobs.execute(["eq"], due_by=clock.now()).ok
            clock.set(at(day, 16, 30))
            set_prices(i, 1)
            assert jobs.guard(["eq"]).ok
            if day.weekday() == 4:  # Friday: Saturday's review on Friday's closes
                clock.set(at(date.fromordinal(day.toordinal() + 1), 12, 0))
                assert jobs.review(["eq"]).ok
    finally:
        app.close()
    return config, broker, backtest


def test_live_services_day_by_day_make_the_backtests_trades(tmp_path: Path) -> None:
    _, broker, backtest = live_and_backtest(tmp_path)
    live = sorted((day, s, q, p) for day, s, side, q, p in broker.fills if side == "sell")
    simulated = sorted(
        (f.day, f.symbol, f.qty, f.price) for f in backtest.fills if f.side == "sell"
    )
    assert live == simulated
    # The scenario is not trivial: a trim, a loss cut, a stale exit, and the cap holding DDD.
    assert simulated == [
        (date(2026, 2, 5), "AAA", D(15), D(122)),
        (date(2026, 2, 6), "BBB", D(50), D(44)),
        (date(2026, 2, 9), "CCC", D(100), D("20.4")),
    ]
    assert ("DDD", "weekly_cap_reached") in {(s.symbol, s.reason) for s in backtest.skips}


def test_report_prices_the_executed_exits_weeks_later(tmp_path: Path) -> None:
    config, _, _ = live_and_backtest(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REBALANC", "ENABLE_AUTO"))}
    proc = subprocess.run(
        [sys.executable, "-m", "rebalancerd", "report", "--config", str(config),
         "--prices", str(tmp_path / "bars.csv"), "--json"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    exits = [(e["symbol"], e["date"], e["later_close"], e["left_on_table"]) for e in data["exits"]]
    # AAA trimmed 15 @ 122 on Feb 5; a week later (Feb 12) it closed at 127: 75 left on the table.
    # BBB sold 50 @ 44 on Feb 6, still 44 on Feb 13. Later horizons are past the prices' end.
    assert exits == [
        ("AAA", "2026-02-05", [127.0, None, None], [75.0, None, None]),
        ("BBB", "2026-02-06", [44.0, None, None], [0.0, None, None]),
        ("CCC", "2026-02-09", [None, None, None], [None, None, None]),
    ]
    assert data["totals"]["profit_take"] == [75.0, 0.0, 0.0]
    assert data["totals"]["all"] == [75.0, 0.0, 0.0]
    assert list(data["totals"]) == ["loss_cut", "profit_take", "stale", "all"]
