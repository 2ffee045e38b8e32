"""Bars and entries CSVs as dense arrays, validated with one clear line per problem.

Bars (``date,symbol,open,high,low,close,volume``) become ``[day, symbol]`` float
matrices so the simulation touches only the cells of held positions; every check
is a vectorised pass over the whole file, and every error names the file and the
line (the header is line 1). Prices are rounded to 6 decimals at load so that a
float read back as ``Decimal(repr(x))`` is the number written in the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rebalancerd.errors import UsageError

BAR_COLUMNS = ("date", "symbol", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
ENTRY_COLUMNS = ("date", "symbol")
CLOSE_COLUMNS = ("date", "symbol", "close")
_HUNDRED = Decimal(100)


class BacktestInputError(UsageError):
    """A bars or entries file is unusable: the message names the file and the line."""


def _fail(path: Path, row: int | None, message: str) -> BacktestInputError:
    where = f"{path}" if row is None else f"{path}:{row + 2}"  # +1 header, +1 one-based
    return BacktestInputError(f"{where}: {message}")


@dataclass(frozen=True)
class Bars:
    """Daily bars as ``[day, symbol]`` matrices; NaN where a symbol has no bar that day."""

    dates: tuple[date, ...]
    symbols: tuple[str, ...]
    open: np.ndarray[Any, np.dtype[np.float64]]
    high: np.ndarray[Any, np.dtype[np.float64]]
    low: np.ndarray[Any, np.dtype[np.float64]]
    close: np.ndarray[Any, np.dtype[np.float64]]
    #: the last close on or before each day (valuation of a symbol without a bar)
    last_close: np.ndarray[Any, np.dtype[np.float64]]

    @property
    def column(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.symbols)}

    @property
    def day_index(self) -> dict[date, int]:
        return {d: i for i, d in enumerate(self.dates)}


@dataclass(frozen=True)
class Entry:
    """One row of the entries file: buy ``symbol`` at ``day``'s close."""

    line: int
    day: date
    symbol: str
    weight: Decimal | None = None  # fraction of equity (the file says percent)
    catalyst_date: date | None = None


def _read_csv(path: Path, **kw: Any) -> pd.DataFrame:
    try:
        frame: pd.DataFrame = pd.read_csv(path, skipinitialspace=True, **kw)
    except FileNotFoundError:
        raise _fail(path, None, "file not found") from None
    except pd.errors.EmptyDataError:
        raise _fail(path, None, "empty file (expected a header line)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise _fail(path, None, f"not a readable CSV: {str(exc).splitlines()[0]}") from None
    return frame


def _require_columns(path: Path, frame: pd.DataFrame, required: tuple[str, ...]) -> None:
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise _fail(path, -1, f"missing column(s) {', '.join(missing)} (need {','.join(required)})")


def _parse_dates(path: Path, values: pd.Series) -> tuple[np.ndarray[Any, Any], list[date]]:
    """Codes per row and the sorted unique dates; only the uniques are parsed."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if (codes < 0).any():
        raise _fail(path, int(np.argmax(codes < 0)), "missing date")
    parsed = pd.to_datetime(pd.Series(uniques, dtype=str), format="%Y-%m-%d", errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        first = int(np.argmax(bad))
        row = int(np.argmax(codes == first))
        raise _fail(path, row, f"bad date {uniques[first]!r}: use YYYY-MM-DD")
    order = np.argsort(parsed.to_numpy(), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    days = [d.date() for d in parsed.iloc[order]]
    return rank[codes], days


def _symbols(path: Path, values: pd.Series) -> tuple[np.ndarray[Any, Any], list[str]]:
    """Codes per row and the symbols, cleaned (stripped, upper case) on the uniques only."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    cleaned = [str(u).strip().upper() for u in uniques]
    blank = (codes < 0) | np.isin(codes, [i for i, c in enumerate(cleaned) if not c])
    if blank.any():
        raise _fail(path, int(np.argmax(blank)), "missing symbol")
    merged, symbols = pd.factorize(pd.Series(cleaned, dtype=object))
    return merged[codes], [str(s) for s in symbols]


def _numeric(path: Path, frame: pd.DataFrame, name: str) -> np.ndarray[Any, Any]:
    column = frame[name]
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values <= 0)
    if bad.any():
        row = int(np.argmax(bad))
        raise _fail(path, row, f"{name} must be a positive number, got {column.iloc[row]!r}")
    return np.round(values, 6)


def load_bars(path: Path, *, closes_only: bool = False) -> Bars:
    """Read and check a bars CSV: sorted by date, one bar per symbol and day, prices > 0.

    ``closes_only``: a price history needs only ``date,symbol,close``; missing
    open/high/low columns are taken as the close.
    """
    frame = _read_csv(path, dtype={"symbol": str, "date": str})
    return bars_from_frame(frame, path, closes_only=closes_only)


def bars_from_frame(frame: pd.DataFrame, path: Path, *, closes_only: bool = False) -> Bars:
    """Check and pivot bars already in a frame (a CSV, or bars fetched from Alpaca)."""
    _require_columns(path, frame, CLOSE_COLUMNS if closes_only else BAR_COLUMNS)
    for name in PRICE_COLUMNS:
        if name not in frame.columns:
            frame[name] = frame["close"]
    if frame.empty:
        raise _fail(path, None, "no bars")
    day, dates = _parse_dates(path, frame["date"])
    unsorted = np.diff(day) < 0
    if unsorted.any():
        row = int(np.argmax(unsorted)) + 1
        raise _fail(path, row, f"dates not sorted: {frame['date'].iloc[row]} after a later date")
    sym, symbols = _symbols(path, frame["symbol"])
    prices = {name: _numeric(path, frame, name) for name in PRICE_COLUMNS}
    crossed = prices["low"] > prices["high"]
    if crossed.any():
        raise _fail(path, int(np.argmax(crossed)), "low is above high")
    shape = (len(dates), len(symbols))
    key = day * shape[1] + sym
    counts = np.bincount(key, minlength=shape[0] * shape[1])
    if (counts > 1).any():
        row = int(np.argmax(counts[key] > 1))
        row = int(np.flatnonzero(key == key[row])[1])
        raise _fail(path, row, f"second bar for {symbols[sym[row]]} on {dates[day[row]]}")
    matrices = {}
    for name, values in prices.items():
        grid = np.full(shape, np.nan)
        grid[day, sym] = values
        matrices[name] = grid
    last_close = pd.DataFrame(matrices["close"]).ffill().to_numpy()
    return Bars(tuple(dates), tuple(str(s) for s in symbols), last_close=last_close, **matrices)


def _optional_decimal(path: Path, row: int, name: str, text: Any) -> Decimal | None:
    if text is None or (isinstance(text, float) and np.isnan(text)) or str(text).strip() == "":
        return None
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise _fail(path, row, f"{name} {text!r} is not a number") from None
    if not value.is_finite() or value <= 0 or value > _HUNDRED:
        raise _fail(path, row, f"{name} {text!r} must be a percent in (0, 100]")
    return value / _HUNDRED


def _optional_date(path: Path, row: int, name: str, text: Any) -> date | None:
    if text is None or (isinstance(text, float) and np.isnan(text)) or str(text).strip() == "":
        return None
    try:
        return date.fromisoformat(str(text).strip())
    except ValueError:
        raise _fail(path, row, f"bad {name} {text!r}: use YYYY-MM-DD") from None


def entry_symbols(path: Path) -> tuple[list[str], date]:
    """The symbols of an entries file and its first date (to fetch bars for them)."""
    frame = _read_csv(path, dtype=str, keep_default_na=False)
    _require_columns(path, frame, ENTRY_COLUMNS)
    days = [_optional_date(path, row, "date", text) for row, text in enumerate(frame["date"])]
    known = [d for d in days if d is not None]
    if not known:
        raise _fail(path, None, "no entries")
    symbols = dict.fromkeys(str(s).strip().upper() for s in frame["symbol"] if str(s).strip())
    return list(symbols), min(known)


def load_entries(path: Path, bars: Bars) -> list[Entry]:
    """Read the entries CSV; each row must name a symbol with a bar on that date."""
    frame = _read_csv(path, dtype=str, keep_default_na=False)
    _require_columns(path, frame, ENTRY_COLUMNS)
    columns, days = bars.column, bars.day_index
    entries = []
    for row, rec in enumerate(frame.to_dict("records")):
        day = _optional_date(path, row, "date", rec["date"])
        if day is None:
            raise _fail(path, row, "missing date")
        symbol = str(rec["symbol"]).strip().upper()
        if symbol not in columns:
            raise _fail(path, row, f"unknown symbol {symbol!r}: not in the bars file")
        d = days.get(day)
        if d is None or np.isnan(bars.close[d, columns[symbol]]):
            raise _fail(path, row, f"no bar for {symbol} on {day}")
        entries.append(
            Entry(
                line=row + 2,
                day=day,
                symbol=symbol,
                weight=_optional_decimal(path, row, "weight", rec.get("weight")),
                catalyst_date=_optional_date(path, row, "catalyst_date", rec.get("catalyst_date")),
            )
        )
    entries.sort(key=lambda e: e.day)
    return entries
