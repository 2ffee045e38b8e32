"""``broker = "alpaca"`` end to end: the real CLI (a subprocess) against the fake Alpaca.

The config points ``base_url`` at the fake server; the keys come from the
environment or a ``.env`` file, never from the config. What is checked is
what the operator sees (JSON on stdout, exit codes) and what the broker got
(orders at the fake).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from tests.fake_alpaca import FakeAlpaca, running_fake

SATURDAY = "2026-11-28T12:00"
MONDAY_OPEN = "2026-11-30T09:30"

CONFIG = """
enabled = true
database_url = "{db_url}"

[accounts.paper]
broker = "alpaca"
base_url = "{base_url}"
live = false
mode = "weekly"
max_exits_per_week = 3
approval = "never"
stop_loss_pct = 15

[accounts.paper.weekly]
profit_take_pct = 20
profit_take_fraction = 0.5
stale_days = 21
stale_move_pct = 5
stop_buffer_pct = 5
"""


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def seed(fake: FakeAlpaca) -> None:
    """A paper account: a +31% winner (AMD, with its stop) and a stale loser-ish KO."""
    st = fake.state
    st.cash = D("50000")
    st.add_position(
        "AMD", D("120"), D("100"), D("131"), opened_at=datetime(2026, 10, 26, 15, tzinfo=UTC)
    )
    st.add_position(
        "KO", D("100"), D("60"), D("61"), opened_at=datetime(2026, 10, 1, 15, tzinfo=UTC)
    )
    stop = {"symbol": "AMD", "qty": "120", "side": "sell", "type": "stop",
            "time_in_force": "gtc", "stop_price": "85",
            "client_order_id": "manual-amd-stop"}  # fmt: skip
    st.place_order(stop)


@pytest.fixture
def fake() -> Iterator[FakeAlpaca]:
    with running_fake() as server:
        seed(server)
        yield server


class Cli:
    def __init__(self, tmp: Path, fake: FakeAlpaca, db_url: str):
        self.tmp = tmp
        self.config = tmp / "rebalancerd.toml"
        self.config.write_text(CONFIG.format(db_url=db_url, base_url=fake.base_url))
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("REBALANCING_", "REBALANCERD_", "ENABLE_AUTO", "APCA_"))
        }
        self.env["REBALANCERD_CONFIG"] = str(self.config)

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Result:
        proc = subprocess.run(
            [sys.executable, "-m", "rebalancerd", *args],
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            cwd=self.tmp,
            timeout=120,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli(tmp_path: Path, fake: FakeAlpaca, db_url: str) -> Cli:
    # The keys live in .env in the working directory, as the walkthrough says.
    (tmp_path / ".env").write_text(
        f"APCA_API_KEY_ID={fake.api_key}\nAPCA_API_SECRET_KEY={fake.secret_key}\n"
    )
    return Cli(tmp_path, fake, db_url)


def market_orders(fake: FakeAlpaca) -> list[Any]:
    return [o for o in fake.state.orders.values() if o.type == "market"]


def test_dry_run_review_reads_the_alpaca_account_and_sends_nothing(
    cli: Cli, fake: FakeAlpaca
) -> None:
    res = cli("review", "--account", "paper", "--dry-run", "--json", "--now", SATURDAY)
    assert res.code == 0, res.stderr
    got = {d["symbol"]: (d["action"], d["reasons"], d["status"]) for d in res.json()}
    assert got == {
        "AMD": ("TRIM", ["profit_take"], "dry_run"),
        "KO": ("EXIT", ["stale"], "dry_run"),
    }
    assert market_orders(fake) == []
    assert fake.count("POST", "/v2/orders") == 0
    # A constant number of reads: account, positions (+ fill history), open orders.
    assert fake.count("GET", "/v2/account") == 1
    assert fake.count("GET", "/v2/positions") == 1


def test_review_then_execute_trims_exits_and_replaces_the_stop(cli: Cli, fake: FakeAlpaca) -> None:
    review = cli("review", "--account", "paper", "--json", "--now", SATURDAY)
    assert review.code == 0, review.stderr
    assert {d["status"] for d in review.json()} == {"approved"}

    res = cli("execute", "--account", "paper", "--json", "--now", MONDAY_OPEN)
    assert res.code == 0, res.stderr
    assert {d["symbol"]: d["status"] for d in res.json()} == {"AMD": "filled", "KO": "filled"}

    st = fake.state
    assert "KO" not in st.positions
    assert st.positions["AMD"].qty == D("60")
    sells = sorted((o.symbol, o.qty, o.status) for o in market_orders(fake))
    assert sells == [("AMD", D("60"), "filled"), ("KO", D("100"), "filled")]
    stops = [o for o in st.orders.values() if o.type == "stop"]
    assert sorted((o.client_order_id.startswith("rbd-"), o.status, o.qty) for o in stops) == [
        (False, "canceled", D("120")),  # the operator's stop, cancelled before the trim
        (True, "new", D("60")),  # re-placed for the 60 shares left, at the same price
    ]
    assert {o.stop_price for o in stops} == {D("85")}

    again = cli("execute", "--account", "paper", "--json", "--now", MONDAY_OPEN)
    assert (again.code, again.json()) == (0, [])
    assert len(market_orders(fake)) == 2


def test_a_missing_key_is_a_config_error_naming_the_variable(
    tmp_path: Path, fake: FakeAlpaca, db_url: str
) -> None:
    cli = Cli(tmp_path, fake, db_url)  # no .env, nothing in the environment
    res = cli("review", "--account", "paper", "--dry-run", "--json", "--now", SATURDAY)
    assert res.code == 78
    assert "APCA_API_KEY_ID" in res.stderr and res.stdout == ""
    assert fake.total == 0


def test_keys_from_the_environment_under_custom_names(
    tmp_path: Path, fake: FakeAlpaca, db_url: str
) -> None:
    cli = Cli(tmp_path, fake, db_url)
    text = cli.config.read_text().replace(
        "live = false", 'live = false\nkey_env = "PAPER_KEY"\nsecret_env = "PAPER_SECRET"'
    )
    cli.config.write_text(text)
    env = {"PAPER_KEY": fake.api_key, "PAPER_SECRET": fake.secret_key}
    res = cli("review", "--account", "paper", "--dry-run", "--json", "--now", SATURDAY, env=env)
    assert res.code == 0, res.stderr
    assert fake.secret_key not in res.stderr + res.stdout


def test_sigkill_while_an_order_is_in_flight_then_restart_sends_it_once(
    cli: Cli, fake: FakeAlpaca
) -> None:
    """A real process killed (SIGKILL) after its sale reached Alpaca but before the
    answer: the restarted execution finds the order by its client_order_id."""
    assert cli("review", "--account", "paper", "--json", "--now", SATURDAY).code == 0
    fake.state.unique_client_order_ids = False  # a blind resend would be a second order
    fake.slow_seconds = 1.0
    fake.inject("slow", method="POST", path="/v2/orders", times=1)  # the first sale hangs
    proc = subprocess.Popen(
        [sys.executable, "-m", "rebalancerd", "execute", "--account", "paper", "--now",
         MONDAY_OPEN], env=cli.env, cwd=cli.tmp, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while fake.count("POST", "/v2/orders") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    while len(market_orders(fake)) == 0 and time.monotonic() < deadline:
        time.sleep(0.01)  # the fake applies the order after its delay
    assert len(market_orders(fake)) == 1

    res = cli("execute", "--account", "paper", "--json", "--now", MONDAY_OPEN)
    assert res.code == 0, res.stderr
    assert {d["symbol"]: d["status"] for d in res.json()} == {"AMD": "filled", "KO": "filled"}
    per_symbol = sorted(o.symbol for o in market_orders(fake))
    assert per_symbol == ["AMD", "KO"]  # the in-flight sale was recovered, not re-sent
