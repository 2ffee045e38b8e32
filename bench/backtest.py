"""Backtest speed: 500 symbols × 10 years of daily bars with daily guards (issue 8).

Generates seeded synthetic bars and weekly entries, writes them as CSV (not
timed), then times loading the CSVs and running the ``daily`` preset through
the shared rule engine. Prints numbers; asserts nothing. Target: < 4 s total.

    .venv/bin/python -m bench.backtest [--symbols 500] [--years 10] [--keep DIR]

``--keep DIR`` leaves ``bars.csv`` and ``entries.csv`` there, for
``rebalancerd backtest --bars DIR/bars.csv --entries DIR/entries.csv``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from rebalancerd.backtest.data import load_bars, load_entries
from rebalancerd.backtest.engine import run_policy
from rebalancerd.backtest.metrics import compute
from rebalancerd.backtest.policy import presets

SEED = 20261124


def synthetic_bars(symbols: int, years: int, seed: int = SEED) -> pd.DataFrame:
    """Geometric random walks with overnight gaps; weekdays from 2015-01-05."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2015-01-05", periods=years * 252)
    n = len(days)
    drift = rng.normal(0.0003, 0.0004, symbols)
    vol = rng.uniform(0.01, 0.03, symbols)
    gap = rng.normal(0, 1, (n, symbols)) * vol * 0.4
    body = rng.normal(0, 1, (n, symbols)) * vol + drift
    start = rng.uniform(10, 300, symbols)
    log_close = np.log(start) + np.cumsum(gap + body, axis=0)
    close = np.exp(log_close)
    opens = close * np.exp(-body)
    wick = np.abs(rng.normal(0, 1, (2, n, symbols))) * vol * 0.5
    high = np.maximum(opens, close) * (1 + wick[0])
    low = np.minimum(opens, close) * (1 - wick[1])
    names = np.array([f"S{i:03d}" for i in range(symbols)])
    return pd.DataFrame(
        {
            "date": np.repeat(days.strftime("%Y-%m-%d").to_numpy(), symbols),
            "symbol": np.tile(names, n),
            "open": opens.ravel().round(2),
            "high": high.ravel().round(2),
            "low": low.ravel().round(2),
            "close": close.ravel().round(2),
            "volume": rng.integers(10_000, 5_000_000, n * symbols),
        }
    )


def synthetic_entries(bars: pd.DataFrame, per_week: int = 4, seed: int = SEED) -> pd.DataFrame:
    """Every Monday, ``per_week`` random symbols at 5% each, catalyst 1–4 weeks out."""
    rng = np.random.default_rng(seed + 1)
    days = pd.to_datetime(pd.Series(bars["date"].unique()))
    mondays = days[days.dt.day_of_week == 0]
    symbols = bars["symbol"].unique()
    rows = []
    for day in mondays:
        for symbol in rng.choice(symbols, per_week, replace=False):
            catalyst = day + pd.Timedelta(days=int(rng.integers(7, 29)))
            rows.append((day.strftime("%Y-%m-%d"), symbol, 5, catalyst.strftime("%Y-%m-%d")))
    return pd.DataFrame(rows, columns=["date", "symbol", "weight", "catalyst_date"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        bars_frame = synthetic_bars(args.symbols, args.years)
        bars_frame.to_csv(folder / "bars.csv", index=False)
        synthetic_entries(bars_frame).to_csv(folder / "entries.csv", index=False)
        t0 = time.perf_counter()
        bars = load_bars(folder / "bars.csv")
        entries = load_entries(folder / "entries.csv", bars)
        t1 = time.perf_counter()
        result = run_policy(
            bars, entries, presets()["daily"], cash=Decimal(100_000), default_weight=Decimal("0.05")
        )
        t2 = time.perf_counter()
        m = compute(result)
        t3 = time.perf_counter()
    print(
        f"backtest bars: {len(bars.symbols)} symbols x {len(bars.dates)} days "
        f"({len(bars_frame):,} rows), {len(entries)} entries"
    )
    print(f"backtest load csv: {t1 - t0:.2f} s")
    print(f"backtest run (daily guards): {t2 - t1:.2f} s, {m.trades} fills")
    print(f"backtest metrics: {t3 - t2:.3f} s")
    print(f"backtest total wall time: {t3 - t0:.2f} s (target < 4 s)")
    print(
        f"backtest result: return {m.total_return:+.1%}, max drawdown {m.max_drawdown:.1%}, "
        f"sharpe {m.sharpe:.2f}, exits per rule {m.exits_per_rule}"
    )


if __name__ == "__main__":
    main()
