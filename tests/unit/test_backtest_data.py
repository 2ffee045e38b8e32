"""Bars and entries CSVs: good files become matrices; bad ones name the file and line."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest

from rebalancerd.backtest.data import BacktestInputError, load_bars, load_entries
from rebalancerd.errors import UsageError

HEADER = "date,symbol,open,high,low,close,volume"
GOOD = [
    "2026-01-05,AAA,10,11,9,10.5,100",
    "2026-01-05,BBB,20,21,19,20.25,100",
    "2026-01-06,AAA,10.5,12,10,11.75,100",
    "2026-01-07,AAA,11,12,10,11,100",
    "2026-01-07,BBB,20,21,19,19.5,100",
]


def write(tmp_path: Path, lines: list[str], name: str = "bars.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bars_become_day_by_symbol_matrices(tmp_path: Path) -> None:
    bars = load_bars(write(tmp_path, [HEADER, *GOOD]))
    assert bars.dates == (date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 7))
    assert bars.symbols == ("AAA", "BBB")
    assert bars.close[0].tolist() == [10.5, 20.25]
    assert math.isnan(bars.close[1, 1])  # BBB has no bar on the 6th...
    assert bars.last_close[1, 1] == 20.25  # ...and is valued at its last close


def test_symbols_are_normalised_and_columns_may_be_reordered(tmp_path: Path) -> None:
    lines = ["Symbol, Date,Close,Open,High,Low,Volume", " aaa ,2026-01-05,10,10,10,10,1"]
    bars = load_bars(write(tmp_path, lines))
    assert bars.symbols == ("AAA",)


@pytest.mark.parametrize(
    ("lines", "where", "message"),
    [
        ([HEADER.replace(",low", ""), "2026-01-05,AAA,1,1,1,1"], ":1:", "missing column(s) low"),
        ([HEADER, GOOD[2], GOOD[0]], ":3:", "dates not sorted"),
        ([HEADER, GOOD[0], "2026-01-06,AAA,,1,1,1,1"], ":3:", "open must be a positive number"),
        ([HEADER, GOOD[0], "2026-01-06,AAA,1,1,1,0,1"], ":3:", "close must be a positive number"),
        ([HEADER, GOOD[0], "2026-01-06,AAA,1,1,-1,1,1"], ":3:", "low must be a positive number"),
        ([HEADER, GOOD[0], "2026-01-06,AAA,1,1,1,abc,1"], ":3:", "got 'abc'"),
        ([HEADER, GOOD[0], "2026-01-06,AAA,1,1,1,nan,1"], ":3:", "close must be a positive"),
        ([HEADER, GOOD[0], "2026-01-06,AAA,1,1,2,1,1"], ":3:", "low is above high"),
        ([HEADER, GOOD[0], "06/01/2026,AAA,1,1,1,1,1"], ":3:", "bad date '06/01/2026'"),
        ([HEADER, GOOD[0], GOOD[1], GOOD[0]], ":4:", "second bar for AAA on 2026-01-05"),
        ([HEADER, GOOD[0], "2026-01-05,,1,1,1,1,1"], ":3:", "missing symbol"),
        ([HEADER], "bars.csv:", "no bars"),
    ],
)
def test_bad_bars_name_file_and_line(
    tmp_path: Path, lines: list[str], where: str, message: str
) -> None:
    path = write(tmp_path, lines)
    with pytest.raises(BacktestInputError) as err:
        load_bars(path)
    text = str(err.value)
    assert text.startswith(str(path)), text
    assert where in text and message in text, text
    assert "\n" not in text
    assert isinstance(err.value, UsageError)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(BacktestInputError, match=r"nope\.csv: file not found"):
        load_bars(tmp_path / "nope.csv")
    with pytest.raises(BacktestInputError, match="empty file"):
        load_bars(write(tmp_path, [""]))


def test_entries_parse_weight_percent_and_catalyst(tmp_path: Path) -> None:
    bars = load_bars(write(tmp_path, [HEADER, *GOOD]))
    path = write(
        tmp_path,
        ["date,symbol,weight,catalyst_date", "2026-01-07,bbb,,", "2026-01-05,AAA,12.5,2026-01-20"],
        "entries.csv",
    )
    entries = load_entries(path, bars)
    assert [(e.day, e.symbol, e.weight, e.catalyst_date, e.line) for e in entries] == [
        (date(2026, 1, 5), "AAA", D("0.125"), date(2026, 1, 20), 3),
        (date(2026, 1, 7), "BBB", None, None, 2),
    ]


@pytest.mark.parametrize(
    ("lines", "where", "message"),
    [
        (["date,weight", "2026-01-05,10"], ":1:", "missing column(s) symbol"),
        (["date,symbol", "2026-01-05,ZZZ"], ":2:", "unknown symbol 'ZZZ'"),
        (["date,symbol", "2026-01-05,AAA", "2026-01-06,BBB"], ":3:", "no bar for BBB on 2026"),
        (["date,symbol", "2026-02-05,AAA"], ":2:", "no bar for AAA"),
        (["date,symbol", "5 Jan,AAA"], ":2:", "bad date"),
        (["date,symbol,weight", "2026-01-05,AAA,0"], ":2:", "weight '0' must be a percent"),
        (["date,symbol,weight", "2026-01-05,AAA,150"], ":2:", "must be a percent in (0, 100]"),
        (["date,symbol,weight", "2026-01-05,AAA,x"], ":2:", "weight 'x' is not a number"),
        (["date,symbol,catalyst_date", "2026-01-05,AAA,soon"], ":2:", "bad catalyst_date"),
    ],
)
def test_bad_entries_name_file_and_line(
    tmp_path: Path, lines: list[str], where: str, message: str
) -> None:
    bars = load_bars(write(tmp_path, [HEADER, *GOOD]))
    path = write(tmp_path, lines, "entries.csv")
    with pytest.raises(BacktestInputError) as err:
        load_entries(path, bars)
    text = str(err.value)
    assert text.startswith(f"{path}{where}"), text
    assert message in text, text
