"""Daily bars from Alpaca's market-data API for the symbols of an entries file.

alpaca-py's ``StockHistoricalDataClient`` pages through ``/v2/stocks/bars``; its
raw answer (symbol → bars with ``t,o,h,l,c,v``) becomes the same frame a bars
CSV gives, so the same checks apply. Keys come from the environment, never from
the config file; ``url`` overrides the endpoint (a proxy, a loopback fake).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from rebalancerd.backtest.data import BAR_COLUMNS, Bars, bars_from_frame
from rebalancerd.errors import BrokerError, ConfigError

NY = ZoneInfo("America/New_York")
KEY_ENV = "APCA_API_KEY_ID"
SECRET_ENV = "APCA_API_SECRET_KEY"


def _keys(environ: Mapping[str, str]) -> tuple[str, str]:
    for name in (KEY_ENV, SECRET_ENV):
        if not environ.get(name):
            raise ConfigError("not set: Alpaca bars need the account's keys", key=name)
    return environ[KEY_ENV], environ[SECRET_ENV]


def _fetch(
    symbols: Sequence[str], start: date, end: date, environ: Mapping[str, str], url: str | None
) -> dict[str, list[dict[str, Any]]]:
    from alpaca.common.exceptions import APIError
    from alpaca.data.enums import Adjustment
    from alpaca.data.historical.stock import StockHistoricalDataClient
    from alpaca.data.requests import StockBarsRequest
    from alpaca.data.timeframe import TimeFrame

    key, secret = _keys(environ)
    client = StockHistoricalDataClient(key, secret, raw_data=True, url_override=url)
    request = StockBarsRequest(
        symbol_or_symbols=list(symbols),
        timeframe=TimeFrame.Day,
        start=datetime.combine(start, time(0), tzinfo=NY),
        end=datetime.combine(end, time(23, 59), tzinfo=NY),
        adjustment=Adjustment.ALL,
    )
    try:
        raw: Any = client.get_stock_bars(request)
    except APIError as exc:
        raise BrokerError(f"alpaca bars: {exc}") from None
    except (OSError, ValueError) as exc:  # requests' connection errors are OSErrors
        raise BrokerError(f"alpaca bars: {type(exc).__name__}: {exc}") from None
    return dict(raw)


def to_frame(raw: Mapping[str, Sequence[Mapping[str, Any]]]) -> pd.DataFrame:
    """Alpaca's raw bars as a bars-CSV frame, sorted by date; ``t`` taken in New York."""
    rows = [
        (pd.Timestamp(b["t"]).tz_convert(NY).strftime("%Y-%m-%d"), symbol,
         b["o"], b["h"], b["l"], b["c"], b.get("v", 0))
        for symbol, bars in raw.items()
        for b in bars
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=list(BAR_COLUMNS))
    return frame.sort_values(["date", "symbol"], kind="stable").reset_index(drop=True)


def alpaca_bars(
    symbols: Sequence[str],
    start: date,
    end: date,
    *,
    environ: Mapping[str, str],
    url: str | None = None,
) -> Bars:
    raw = _fetch(symbols, start, end, environ, url)
    return bars_from_frame(to_frame(raw), Path(f"alpaca bars {start}..{end}"))
