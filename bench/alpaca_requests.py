"""Requests the Alpaca adapter makes for a review's reads, printed as numbers.

``python -m bench.alpaca_requests``: starts the fake Alpaca server (from the
test suite), gives it 1, 10 and 100 positions, each with its opening fill and
a resting GTC stop, and runs what a review reads (account, positions with
opening dates, open orders) through AlpacaBroker. A second table gives each
position a deeper fill history (three fills, and 2 unrelated round trips per
position) to show the activity walk grows with history, bounded by its page cap.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from rebalancerd.adapters.alpaca import AlpacaBroker
from tests.fake_alpaca import running_fake

T0 = datetime(2024, 10, 1, 14, 0, tzinfo=UTC)
ENDPOINTS = (
    ("GET", "/v2/account"),
    ("GET", "/v2/positions"),
    ("GET", "/v2/account/activities/{activity_type}"),
    ("GET", "/v2/orders"),
)


def run(n: int, *, deep: bool) -> tuple[dict[str, int], int, float, int]:
    with running_fake() as fake:
        st = fake.state
        for i in range(n):
            symbol = f"S{i:03d}"
            at = T0 + timedelta(hours=i)
            if deep:
                st.trade(symbol, "buy", D("10"), D("50"), at)
                st.trade(symbol, "sell", D("4"), D("55"), at + timedelta(days=10))
                st.trade(symbol, "buy", D("4"), D("52"), at + timedelta(days=11))
                for k in range(2):
                    when = at + timedelta(days=12 + k)
                    st.trade("ZZZ", "buy", D("1"), D("9"), when)
                    st.trade("ZZZ", "sell", D("1"), D("9"), when + timedelta(minutes=1))
            else:
                st.add_position(symbol, D("10"), D("50"), opened_at=at)
            st.place_order(
                {"symbol": symbol, "qty": "10", "side": "sell", "type": "stop",
                 "stop_price": "40", "time_in_force": "gtc"}
            )  # fmt: skip
        broker = AlpacaBroker(fake.api_key, fake.secret_key, base_url=fake.base_url)
        started = time.perf_counter()
        broker.get_account()
        positions = broker.get_positions()
        broker.get_open_orders()
        elapsed = time.perf_counter() - started
        dated = sum(p.opened_at is not None for p in positions)
        per = {path: fake.count(method, path) for method, path in ENDPOINTS}
        return per, fake.total, elapsed, dated


def main() -> None:
    for deep in (False, True):
        title = "deep history (3 fills + 4 unrelated per position)" if deep else "one fill each"
        print(f"review reads, {title}")
        print(f"{'positions':>9} {'account':>7} {'positions':>9} {'activities':>10} "
              f"{'orders':>6} {'total':>5} {'dated':>5} {'ms':>7}")  # fmt: skip
        for n in (1, 10, 100):
            per, total, elapsed, dated = run(n, deep=deep)
            counts = [per[path] for _, path in ENDPOINTS]
            print(f"{n:>9} {counts[0]:>7} {counts[1]:>9} {counts[2]:>10} {counts[3]:>6} "
                  f"{total:>5} {dated:>5} {elapsed * 1000:>7.1f}")  # fmt: skip
        print()


if __name__ == "__main__":
    main()
