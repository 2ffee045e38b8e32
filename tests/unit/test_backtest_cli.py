"""``rebalancerd backtest`` as an operator runs it (a subprocess), and sweep grids."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal as D
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlparse

import pytest

from rebalancerd.backtest.policy import presets, with_override
from rebalancerd.backtest.runner import grid, parse_sweep, select_policies
from rebalancerd.domain.model import Block
from rebalancerd.errors import UsageError

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "backtest"
EXAMPLE = REPO / "config" / "rebalancerd.example.toml"


def backtest(
    *args: str, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    prefixes = ("REBALANC", "ENABLE_AUTO", "APCA_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)} | (env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "rebalancerd", "backtest", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


FILES = ("--bars", str(DATA / "bars.csv"), "--entries", str(DATA / "entries.csv"))


def test_presets_and_reference_accounts_side_by_side(tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = backtest(*FILES, "--config", str(EXAMPLE), "--json", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    names = [r["policy"] for r in data["runs"]]
    assert names == ["none", "weekly", "daily", "hybrid", "dee-bot", "shorgan-bot"]
    metrics = data["runs"][0]["metrics"]
    for key in ("total_return", "annual_return", "max_drawdown", "sharpe", "trades", "turnover"):
        assert isinstance(metrics[key], (int, float))
    assert {"win_rate", "avg_hold_days", "exits_per_rule", "short_term_gains"} <= set(metrics)
    assert (out / "equity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "| dee-bot |" in report and "| shorgan-bot |" in report
    assert json.loads((out / "results.json").read_text()) == data
    assert (out / "fills.csv").read_text().startswith("policy,date,symbol,side")


def test_without_a_config_only_presets_and_a_human_table() -> None:
    proc = backtest(*FILES, "--policy", "none", "--policy", "daily")
    assert proc.returncode == 0, proc.stderr
    assert "none" in proc.stdout and "daily" in proc.stdout and "hybrid" not in proc.stdout
    assert "total return" in proc.stdout


def test_sweep_runs_the_grid_ranked_by_the_metric() -> None:
    proc = backtest(
        *FILES,
        "--policy",
        "daily",
        "--sweep",
        "profit_take_pct=5,10,40",
        "--sweep",
        "stale_days=5,10",
        "--rank-by",
        "total_return",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["rank_by"] == "total_return"
    runs = data["runs"]
    assert len(runs) == 6
    assert {(r["params"]["profit_take_pct"], r["params"]["stale_days"]) for r in runs} == {
        (p, s) for p in ("5", "10", "40") for s in ("5", "10")
    }
    returns = [r["metrics"]["total_return"] for r in runs]
    assert returns == sorted(returns, reverse=True)
    assert len({json.dumps(r["metrics"]) for r in runs}) > 1  # the swept keys matter


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--bars", str(DATA / "entries.csv"), "--entries", str(DATA / "entries.csv")),
         "entries.csv:1: missing column(s) open, high, low, close, volume"),
        ((*FILES, "--policy", "yolo"), "--policy 'yolo': not a preset"),
        ((*FILES, "--sweep", "profit_take_pct"), "use key=v1,v2"),
        ((*FILES, "--policy", "none", "--sweep", "profit_take_pct=20"), "has no rule block"),
        ((*FILES, "--policy", "daily", "--sweep", "loss_cut_pct=20"), "below stop_loss_pct"),
        ((*FILES, "--weight", "0"), "--weight '0': must be above 0"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2_nothing_on_stdout(
    args: tuple[str, ...], message: str
) -> None:
    proc = backtest(*args, "--json")
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_grid_is_the_product_of_the_sweeps_per_policy() -> None:
    policies = select_policies(["daily", "hybrid"], {})
    sweeps = [parse_sweep("profit_take_pct=20,30"), parse_sweep("daily.loss_cut_pct=10, 11,12")]
    variants = grid(policies, sweeps)
    assert len(variants) == 2 * 2 * 3
    first, params = variants[0]
    assert params == {"profit_take_pct": "20", "daily.loss_cut_pct": "10"}
    block = first.rule_block(Block.DAILY)
    assert block is not None
    assert (block.profit_take_pct, block.loss_cut_pct) == (D("0.2"), D("0.1"))
    assert first.display == "daily profit_take_pct=20 daily.loss_cut_pct=10"


def test_override_targets_blocks_and_account_keys() -> None:
    hybrid = presets()["hybrid"]
    # a bare key changes every block that sets it; weekly has no profit_take here
    changed = with_override(hybrid, "stale_days", "30")
    weekly = changed.rule_block(Block.WEEKLY)
    assert weekly is not None and weekly.stale_days == 30
    # an explicit block may switch a rule on
    on = with_override(hybrid, "weekly.profit_take_pct", "20")
    weekly = on.rule_block(Block.WEEKLY)
    assert weekly is not None and weekly.profit_take_pct == D("0.2")
    assert with_override(hybrid, "max_exits_per_week", "1").max_exits_per_week == 1
    with pytest.raises(UsageError, match="unknown key"):
        with_override(hybrid, "profit_tak_pct", "1")
    with pytest.raises(UsageError, match="not a whole number"):
        with_override(hybrid, "stale_days", "1.5")


def test_the_cli_offers_every_rankable_metric() -> None:
    from rebalancerd.backtest.metrics import RANKABLE
    from rebalancerd.cli.backtest import RANK_BY

    assert RANK_BY == RANKABLE


class FakeDataApi(BaseHTTPRequestHandler):
    """Alpaca's ``GET /v2/stocks/bars`` on loopback, two pages, checking the keys."""

    calls: ClassVar[list[dict[str, list[str]]]] = []
    closes: ClassVar[dict[str, list[float]]] = {"AAA": [100, 87, 86, 85.5], "BBB": [50, 50, 50, 50]}

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        type(self).calls.append(query)
        if url.path != "/v2/stocks/bars" or self.headers.get("APCA-API-KEY-ID") != "key":
            self.send_response(403)
            self.end_headers()
            self.wfile.write(b'{"message": "forbidden"}')
            return
        symbols = query["symbols"][0].split(",")
        page = 1 if "page_token" not in query else 2
        days = [5, 6] if page == 1 else [7, 8]
        bars = {
            s: [
                {"t": f"2026-01-{d:02d}T05:00:00Z", "o": c, "h": c, "l": c, "c": c, "v": 10}
                for d, c in zip(days, self.closes[s][(page - 1) * 2 : page * 2], strict=True)
            ]
            for s in symbols
        }
        body = {"bars": bars, "next_page_token": "p2" if page == 1 else None}
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(body).encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def data_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeDataApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeDataApi.calls.clear()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_bars_from_alpaca_for_the_entries_symbols(tmp_path: Path, data_api: str) -> None:
    entries = tmp_path / "entries.csv"
    entries.write_text("date,symbol,weight\n2026-01-05,AAA,10\n2026-01-05,bbb,10\n")
    args = ("--bars", "alpaca", "--end", "2026-01-09", "--entries", str(entries))
    args += ("--data-url", data_api, "--policy", "daily", "--json")
    proc = backtest(*args, env_extra={"APCA_API_KEY_ID": "key", "APCA_API_SECRET_KEY": "s"})
    assert proc.returncode == 0, proc.stderr
    # Two pages fetched for both symbols from the first entry's date.
    assert [c["symbols"] for c in FakeDataApi.calls] == [["AAA,BBB"], ["AAA,BBB"]]
    assert FakeDataApi.calls[0]["start"][0].startswith("2026-01-05")
    metrics = json.loads(proc.stdout)["runs"][0]["metrics"]
    # AAA: 100 @ 100 (10% of 100,000), -13% on the 6th → loss cut at the open of the 7th
    # (86), above the stop at 85.
    assert metrics["exits_per_rule"] == {"loss_cut": 1}
    assert metrics["realised_pnl"] == (86 - 100) * 100


def test_alpaca_bars_need_keys_and_report_refusals(tmp_path: Path, data_api: str) -> None:
    entries = tmp_path / "entries.csv"
    entries.write_text("date,symbol\n2026-01-05,AAA\n")
    args = ("--bars", "alpaca", "--entries", str(entries), "--data-url", data_api)
    proc = backtest(*args)
    assert proc.returncode == 78
    assert "APCA_API_KEY_ID" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = backtest(*args, env_extra={"APCA_API_KEY_ID": "bad", "APCA_API_SECRET_KEY": "s"})
    assert proc.returncode == 1
    assert "alpaca bars" in proc.stderr and "Traceback" not in proc.stderr
