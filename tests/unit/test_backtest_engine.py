"""Hand-computed backtests: each rule, the next-open fill, stops with gaps, caps, sizing.

Every bar file is a few symbols over a few weeks of weekdays (January 2026:
Mon 5th ... Fri 9th, Mon 12th ... Fri 16th, Mon 19th). Expected trades and
equity are worked out in the comments.
"""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from rebalancerd.backtest.data import load_bars, load_entries
from rebalancerd.backtest.engine import run_policy
from rebalancerd.backtest.policy import Policy, Schedule
from rebalancerd.backtest.records import RunResult
from rebalancerd.config.models import RuleBlockConfig
from rebalancerd.domain.model import Block, Mode, Source

DAYS = [f"2026-01-{d:02d}" for d in (5, 6, 7, 8, 9, 12, 13, 14, 15, 16, 19)]


def bars_csv(tmp_path: Path, prices: dict[str, list[tuple[float, float, float, float]]]) -> Path:
    """prices[symbol] = [(open, high, low, close), ...] for DAYS[0], DAYS[1], ..."""
    lines = ["date,symbol,open,high,low,close,volume"]
    n = max(len(v) for v in prices.values())
    for i in range(n):
        for symbol, rows in prices.items():
            if i < len(rows):
                o, h, lo, c = rows[i]
                lines.append(f"{DAYS[i]},{symbol},{o},{h},{lo},{c},1000")
    path = tmp_path / "bars.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def flat(price: float) -> tuple[float, float, float, float]:
    return (price, price, price, price)


def run(
    tmp_path: Path,
    prices: dict[str, list[tuple[float, float, float, float]]],
    entries: str,
    policy: Policy,
    cash: str = "10000",
) -> RunResult:
    bars = load_bars(bars_csv(tmp_path, prices))
    path = tmp_path / "entries.csv"
    path.write_text(entries)
    return run_policy(bars, load_entries(path, bars), policy, cash=D(cash), default_weight=D("0.5"))


def daily(stop: str | None = None, **rules: object) -> Policy:
    block = RuleBlockConfig.model_validate(rules)
    return Policy("test", Mode.DAILY, {Block.DAILY: block}, stop_loss_pct=D(stop) if stop else None)


def trades(result: RunResult) -> list[tuple[str, str, str, D, D, tuple[str, ...]]]:
    return [(str(f.day), f.symbol, f.side, f.qty, f.price, f.reasons) for f in result.fills]


def test_loss_cut_fires_on_the_close_and_fills_at_the_next_open(tmp_path: Path) -> None:
    # Buy 50 @ 100 (50% of 10,000). Day 3 closes at 87: -13% ≤ -12% → exit next open 86.
    prices = {"AAA": [flat(100), flat(90), (89, 90, 86, 87), (86, 88, 85, 88), flat(88)]}
    result = run(tmp_path, prices, "date,symbol\n2026-01-05,AAA\n", daily(loss_cut_pct=12))
    assert trades(result) == [
        ("2026-01-05", "AAA", "buy", D(50), D(100), ()),
        ("2026-01-08", "AAA", "sell", D(50), D(86), ("loss_cut",)),
    ]
    assert result.fills[1].pnl == D(-700)
    # 5,000 cash + 50 × close; after the sale 9,300 cash.
    assert list(result.equity) == [10000, 9500, 9350, 9300, 9300]


def test_no_rule_runs_on_the_entry_day_close(tmp_path: Path) -> None:
    # Bought at the close of a day that is already -20% from its open: no loss cut that day.
    prices = {"AAA": [(125, 125, 100, 100), flat(100), flat(100)]}
    result = run(tmp_path, prices, "date,symbol\n2026-01-05,AAA\n", daily(loss_cut_pct=12))
    assert [f.side for f in result.fills] == ["buy"]


def test_profit_take_trims_once_per_level(tmp_path: Path) -> None:
    # 50 @ 100; close 126 (+26% ≥ 25%) → trim floor(50 × 0.5) = 25 at the next open 127;
    # later closes at +30% do not trim again: the level is taken.
    prices = {"AAA": [flat(100), flat(126), (127, 131, 126, 130), flat(131), flat(132)]}
    result = run(
        tmp_path,
        prices,
        "date,symbol\n2026-01-05,AAA\n",
        daily(profit_take_pct=25, profit_take_fraction=D("0.5")),
    )
    assert trades(result)[1:] == [("2026-01-07", "AAA", "sell", D(25), D(127), ("profit_take",))]
    assert result.open_positions == {"AAA": D(25)}
    # 5,000 + 25 × 127 = 8,175 cash; + 25 × 132 = 11,475 at the last close.
    assert result.equity[-1] == 11475


def test_concentration_trims_the_smallest_whole_number_of_shares(tmp_path: Path) -> None:
    # 20% of 10,000 @ 100 = 20 shares, cash 8,000. Close 150: equity 11,000, weight 27.3%
    # > 20% → keep 0.2 × 11,000 / 150 = 14.67 shares → sell ceil(5.33) = 6 at the open 150.
    prices = {"AAA": [flat(100), flat(150), flat(150), flat(150)]}
    result = run(
        tmp_path, prices, "date,symbol,weight\n2026-01-05,AAA,20\n", daily(max_position_pct=20)
    )
    assert trades(result)[1:] == [("2026-01-07", "AAA", "sell", D(6), D(150), ("concentration",))]


def test_stale_exits_a_flat_position_after_stale_days(tmp_path: Path) -> None:
    # Entered Mon 5th; age > 3 days first on Fri 9th (4 days), moved < 5% → exit Mon 12th.
    prices = {"AAA": [flat(100), flat(101), flat(102), flat(101), flat(103), flat(104)]}
    result = run(
        tmp_path, prices, "date,symbol\n2026-01-05,AAA\n", daily(stale_days=3, stale_move_pct=5)
    )
    assert trades(result)[1:] == [("2026-01-12", "AAA", "sell", D(50), D(104), ("stale",))]


def test_stale_catalyst_passed_uses_the_entries_catalyst_date(tmp_path: Path) -> None:
    # Up 12% (not flat), but the catalyst (Jan 7th) has passed by the 9th → exit Mon 12th.
    prices = {"AAA": [flat(100), flat(105), flat(110), flat(112), flat(112), flat(113)]}
    result = run(
        tmp_path,
        prices,
        "date,symbol,catalyst_date\n2026-01-05,AAA,2026-01-07\n",
        daily(stale_days=3, stale_move_pct=5),
    )
    assert trades(result)[1:] == [("2026-01-12", "AAA", "sell", D(50), D(113), ("stale",))]


def test_stop_fills_at_the_stop_or_at_a_gap_open_below_it(tmp_path: Path) -> None:
    # Stops at 85.00 (15% below 100). AAA gaps down to an open of 80: filled at 80.
    # BBB opens at 90 and trades down to 84: filled at the stop, 85.
    prices = {
        "AAA": [flat(100), (95, 96, 86, 90), (80, 82, 78, 81)],
        "BBB": [flat(100), flat(95), (90, 91, 84, 86)],
    }
    entries = "date,symbol,weight\n2026-01-05,AAA,40\n2026-01-05,BBB,40\n"
    policy = Policy("none", Mode.OFF, stop_loss_pct=D(15))
    result = run(tmp_path, prices, entries, policy)
    sells = [t for t in trades(result) if t[2] == "sell"]
    assert sells == [
        ("2026-01-07", "AAA", "sell", D(40), D(80), ("stop_loss",)),
        ("2026-01-07", "BBB", "sell", D(40), D(85), ("stop_loss",)),
    ]
    # cash 2,000 + 40 × 80 + 40 × 85 = 8,600
    assert result.equity[-1] == 8600


def test_stop_approach_uses_the_protective_stop(tmp_path: Path) -> None:
    # Stop 85, buffer 5% → fires at a close ≤ 89.25: the close of 89 → exit at the open 88.
    prices = {"AAA": [flat(100), flat(90), flat(89), flat(88), flat(88)]}
    result = run(tmp_path, prices, "date,symbol\n2026-01-05,AAA\n", daily("15", stop_buffer_pct=5))
    assert trades(result)[1:] == [("2026-01-08", "AAA", "sell", D(50), D(88), ("stop_approach",))]


def test_weekly_review_reads_friday_close_exits_monday_and_honours_the_cap(tmp_path: Path) -> None:
    # Stale after 3 days (flat). Saturday 10th review: AAA (age 5) and BBB (age 4) both stale;
    # cap 1 → the oldest, AAA, sells Monday 12th; BBB is skipped and sells Monday 19th.
    prices = {"AAA": [flat(100)] * 11, "BBB": [flat(50)] * 11}
    entries = "date,symbol,weight\n2026-01-05,AAA,30\n2026-01-06,BBB,30\n"
    block = RuleBlockConfig(stale_days=3, stale_move_pct=D(5))
    policy = Policy("w", Mode.WEEKLY, {Block.WEEKLY: block}, max_exits_per_week=1)
    result = run(tmp_path, prices, entries, policy)
    sells = [(t[0], t[1], t[5]) for t in trades(result) if t[2] == "sell"]
    assert sells == [("2026-01-12", "AAA", ("stale",)), ("2026-01-19", "BBB", ("stale",))]
    assert [(str(s.day), s.symbol, s.reason) for s in result.skips] == [
        ("2026-01-09", "BBB", "weekly_cap_reached")
    ]


def test_daily_guards_are_exempt_from_the_weekly_cap(tmp_path: Path) -> None:
    # Two -20% losers on the same close, cap 0: both still exit (daily guards not in cap_sources).
    prices = {"AAA": [flat(100), flat(80), flat(80)], "BBB": [flat(50), flat(40), flat(40)]}
    entries = "date,symbol,weight\n2026-01-05,AAA,30\n2026-01-05,BBB,30\n"
    policy = daily(loss_cut_pct=12)
    policy = Policy("d", Mode.DAILY, policy.blocks, max_exits_per_week=0, stop_loss_pct=None)
    result = run(tmp_path, prices, entries, policy)
    assert [f.symbol for f in result.fills if f.side == "sell"] == ["AAA", "BBB"]
    capped = Policy(
        "d",
        Mode.DAILY,
        policy.blocks,
        max_exits_per_week=1,
        cap_sources=frozenset(Source),
        stop_loss_pct=None,
    )
    result = run(tmp_path, prices, entries, capped)
    # Capped: the largest loss first (both -20%: then by symbol) → AAA only.
    assert [f.symbol for f in result.fills if f.side == "sell"] == ["AAA"]
    assert [(s.symbol, s.reason) for s in result.skips] == [("BBB", "weekly_cap_reached")]


def test_entries_are_sized_by_close_equity_and_limited_by_cash(tmp_path: Path) -> None:
    # 60% of 10,000 @ 100 = 60 shares (6,000); the second 60% @ 50 wants 120 but cash
    # allows 4,000 / 50 = 80; a third finds no cash.
    prices = {"AAA": [flat(100)], "BBB": [flat(50)], "CCC": [flat(10)]}
    entries = "date,symbol,weight\n2026-01-05,AAA,60\n2026-01-05,BBB,60\n2026-01-05,CCC,10\n"
    result = run(tmp_path, prices, entries, Policy("none", Mode.OFF, stop_loss_pct=None))
    assert [(f.symbol, f.qty) for f in result.fills] == [("AAA", D(60)), ("BBB", D(80))]
    assert [(s.symbol, s.reason) for s in result.skips] == [("CCC", "insufficient_cash")]


def test_entries_respect_max_position_pct_and_skip_held_symbols(tmp_path: Path) -> None:
    # max_position_pct 15 caps a 50% entry at 15 shares @ 100; a second AAA entry is skipped.
    prices = {"AAA": [flat(100), flat(100)]}
    entries = "date,symbol,weight\n2026-01-05,AAA,50\n2026-01-06,AAA,10\n"
    result = run(tmp_path, prices, entries, daily(max_position_pct=15))
    assert [(f.symbol, f.qty) for f in result.fills] == [("AAA", D(15))]
    assert [s.reason for s in result.skips] == ["already_held"]


def test_a_symbol_exited_this_week_is_not_rebought_that_week(tmp_path: Path) -> None:
    prices = {"AAA": [flat(100), flat(80), flat(80), flat(80)]}
    entries = "date,symbol\n2026-01-05,AAA\n2026-01-08,AAA\n"
    result = run(tmp_path, prices, entries, daily(loss_cut_pct=12))
    assert [s.reason for s in result.skips] == ["exited_this_week"]


@pytest.mark.parametrize("policy", ["none", "weekly", "daily", "hybrid"])
def test_presets_run_on_the_fixture_files(policy: str) -> None:
    from rebalancerd.backtest.policy import presets

    data = Path(__file__).parent.parent / "data" / "backtest"
    bars = load_bars(data / "bars.csv")
    entries = load_entries(data / "entries.csv", bars)
    result = run_policy(bars, entries, presets()[policy], cash=D(100_000), default_weight=D("0.1"))
    assert len(result.equity) == len(bars.dates)
    assert result.fills[0].side == "buy"
    assert Schedule().review_weekday == 5
