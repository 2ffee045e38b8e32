"""When was each current position opened? From Alpaca's FILL activities.

alpaca-py's TradingClient has no call for ``GET /v2/account/activities/FILL``,
so :class:`FillHistory` reads it through the client's raw ``get`` (same session,
timeout and retries as every other call). The walk goes newest first
(``direction=desc``, ``page_size=100``, ``page_token`` = the last id seen) and
undoes each fill of a held symbol from its current quantity; the fill that
takes the quantity back to zero (or across it) is the one that opened the
position. It stops as soon as every symbol is resolved, and after
``max_pages`` pages at the latest; symbols left unresolved (older than the
pages read, split, transferred in) are simply absent from the result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from rebalancerd.adapters.alpaca.convert import dec, parse_timestamp
from rebalancerd.errors import BrokerError

FILL_PATH = "/account/activities/FILL"
PAGE_SIZE = 100
MAX_PAGES = 20

#: ``fetch(params)`` returns the decoded JSON of one activities page.
PageFetcher = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution. ``qty`` is None when the record could not be read."""

    id: str
    symbol: str
    side: str
    qty: Decimal | None
    transaction_time: datetime | None

    @property
    def signed_qty(self) -> Decimal | None:
        if self.qty is None:
            return None
        return self.qty if self.side == "buy" else -self.qty


def fill_from_json(item: Any) -> Fill | None:
    """A Fill from one activity; None when it is not a fill of a symbol at all."""
    if not isinstance(item, Mapping):
        return None
    symbol = item.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        return None
    ident = str(item.get("id", ""))
    side = str(item.get("side", "")).lower()
    try:
        qty: Decimal | None = dec(item.get("qty"), field="fill qty")
        when: datetime | None = parse_timestamp(str(item.get("transaction_time")))
    except (BrokerError, ValueError):
        qty, when = None, None
    if side not in ("buy", "sell", "sell_short") or qty is None or qty <= 0:
        qty, when = None, None
    return Fill(id=ident, symbol=symbol, side=side, qty=qty, transaction_time=when)


def opening_times(current: Mapping[str, Decimal], fills: Iterable[Fill]) -> dict[str, datetime]:
    """Opening time per symbol of ``current`` (signed quantities), fills newest first.

    Consumes ``fills`` only until every symbol is resolved, so a lazy pager
    stops fetching early. A symbol whose history has an unreadable fill is
    given up (absent from the result) rather than guessed.
    """
    running = {symbol: qty for symbol, qty in current.items() if qty != 0}
    opened: dict[str, datetime] = {}
    if not running:
        return opened
    for fill in fills:
        before = running.get(fill.symbol)
        if before is None:
            continue
        signed = fill.signed_qty
        if signed is None or fill.transaction_time is None:
            del running[fill.symbol]
        else:
            after = before - signed
            if after == 0 or (after > 0) != (before > 0):
                opened[fill.symbol] = fill.transaction_time
                del running[fill.symbol]
            else:
                running[fill.symbol] = after
        if not running:
            break
    return opened


class FillHistory:
    """Pages of FILL activities, newest first, read lazily."""

    def __init__(
        self, fetch: PageFetcher, *, page_size: int = PAGE_SIZE, max_pages: int = MAX_PAGES
    ):
        if page_size < 1 or max_pages < 1:
            raise ValueError("page_size and max_pages must be positive")
        self._fetch = fetch
        self._page_size = page_size
        self._max_pages = max_pages
        self.pages_read = 0

    def iter_fills(self) -> Iterator[Fill]:
        token: str | None = None
        seen_tokens: set[str] = set()
        for _ in range(self._max_pages):
            params: dict[str, Any] = {"direction": "desc", "page_size": self._page_size}
            if token is not None:
                params["page_token"] = token
            page = self._fetch(params)
            self.pages_read += 1
            if not isinstance(page, list) or not page:
                return
            for item in page:
                fill = fill_from_json(item)
                if fill is not None:
                    yield fill
            last = page[-1]
            token = str(last.get("id", "")) if isinstance(last, Mapping) else ""
            if len(page) < self._page_size or not token or token in seen_tokens:
                return
            seen_tokens.add(token)

    def opening_times(self, current: Mapping[str, Decimal]) -> dict[str, datetime]:
        if not any(qty != 0 for qty in current.values()):
            return {}
        return opening_times(current, self.iter_fills())
