"""The audit trail on both engines: the export round-trip and append-only history.

A week of the demo portfolio with ``approval = "always"``: Saturday's review
queues SHOP (EXIT 80), MSFT (TRIM 10) and AMD (TRIM 50); the operator approves
SHOP and AMD and rejects MSFT; Monday's execution fills SHOP at 88.00 and AMD
at 124.00 (both opened 2026-11-09, entry 100.00).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from rebalancerd.composition import App, build_app
from rebalancerd.config.settings import load_settings
from rebalancerd.domain.model import Side
from rebalancerd.ports import DecisionFilter
from rebalancerd.services.export import (
    COLUMNS,
    Exporter,
    holding_term,
    realised_gain,
    write_csv,
    write_jsonl,
)
from rebalancerd.services.jobs import Jobs
from tests.e2e.conftest import example_config
from tests.fakes import FakeClock

NY = ZoneInfo("America/New_York")
SATURDAY = datetime(2026, 11, 28, 12, 0, tzinfo=NY)
SUNDAY = datetime(2026, 11, 29, 10, 0, tzinfo=NY)
MONDAY_OPEN = datetime(2026, 11, 30, 9, 30, tzinfo=NY)


@pytest.fixture
def week(db_url: str, tmp_path: Path) -> Iterator[App]:
    config = example_config(tmp_path, replace={'approval = "never"': 'approval = "always"'})
    settings = load_settings(config, environ={"REBALANCERD_DATABASE_URL": db_url}, env_file=None)
    clock = FakeClock(SATURDAY)
    app = build_app(settings, clock=clock)
    queued = {d.symbol: d.id for d in Jobs(app).review(["dee-bot"]).decisions}
    clock.set(SUNDAY)
    app.approval.approve([queued["SHOP"], queued["AMD"]], actor="alice", now=clock.now())
    app.approval.reject([queued["MSFT"]], actor="bob", now=clock.now(), reason="keep")
    clock.set(MONDAY_OPEN)
    assert Jobs(app).execute(["dee-bot"]).ok
    yield app
    app.close()


def _exits(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {r["symbol"]: r for r in rows if r["realised_gain"]}


def test_export_has_holding_period_and_realised_gain_per_exit(week: App) -> None:
    rows = Exporter(week.store, NY).rows(since=None, accounts=None)
    exits = _exits(rows)
    assert set(exits) == {"SHOP", "AMD"}
    shop, amd = exits["SHOP"], exits["AMD"]
    assert (shop["filled_qty"], shop["filled_avg_price"], shop["realised_gain"]) == (
        "80",
        "88",
        "-960.00",
    )
    assert (amd["filled_qty"], amd["realised_gain"]) == ("50", "1200.00")
    for r in (shop, amd):
        assert (r["holding_days"], r["holding_term"]) == ("21", "short")
        assert r["opened_at"] == "2026-11-09T00:00:00-05:00"
        assert r["filled_at"] == "2026-11-30T09:30:00-05:00"
        assert (r["decided_by"], r["order_side"], r["order_type"]) == ("alice", "sell", "market")
    msft = next(r for r in rows if r["symbol"] == "MSFT")
    assert (msft["status"], msft["decided_by"], msft["client_order_id"]) == ("rejected", "bob", "")
    # AMD's trim re-placed its stop for the 50 shares left: an order row without a gain.
    stops = [r for r in rows if r["order_type"] == "stop"]
    assert [(r["symbol"], r["order_qty"], r["realised_gain"]) for r in stops] == [("AMD", "50", "")]
    assert all(list(r) == list(COLUMNS) for r in rows)


def test_csv_and_jsonl_round_trip_to_the_same_rows(week: App) -> None:
    rows = Exporter(week.store, NY).rows(since=None, accounts=None)
    as_csv, as_jsonl = io.StringIO(), io.StringIO()
    write_csv(rows, as_csv)
    write_jsonl(rows, as_jsonl)
    from_csv = list(csv.DictReader(io.StringIO(as_csv.getvalue())))
    from_jsonl = [json.loads(line) for line in as_jsonl.getvalue().splitlines()]
    assert from_csv == from_jsonl == rows
    assert len(rows) == len({(r["decision_id"], r["client_order_id"]) for r in rows})


def test_export_filters_by_date_and_account(week: App) -> None:
    exporter = Exporter(week.store, NY)
    assert exporter.rows(since=SUNDAY, accounts=None) == []
    assert exporter.rows(since=SATURDAY, accounts={"shorgan-bot"}) == []
    assert exporter.rows(since=SATURDAY, accounts={"dee-bot"}) != []


def test_history_rows_cannot_be_updated_or_deleted(week: App) -> None:
    before = {
        d.id: week.store.decision_history(d.id) for d in week.store.list_decisions(DecisionFilter())
    }
    forged = [
        "UPDATE decision_events SET actor = 'mallory' WHERE status = 'approved'",
        "UPDATE decision_events SET status = 'approved' WHERE status = 'rejected'",
        "DELETE FROM decision_events WHERE status = 'rejected'",
    ]
    for statement in forged:
        with pytest.raises(DBAPIError, match="append-only"), week.engine.begin() as conn:
            conn.execute(text(statement))
    after = {d: week.store.decision_history(d) for d in before}
    assert after == before
    assert any(e.actor == "alice" for events in after.values() for e in events)


@pytest.mark.parametrize(
    ("opened", "closed", "term"),
    [
        (date(2025, 1, 10), date(2026, 1, 10), "short"),  # exactly one year: not more
        (date(2025, 1, 10), date(2026, 1, 11), "long"),
        (date(2024, 2, 29), date(2025, 3, 1), "short"),
        (date(2024, 2, 29), date(2025, 3, 2), "long"),
    ],
)
def test_holding_term_is_long_after_more_than_a_year(opened: date, closed: date, term: str) -> None:
    assert holding_term(opened, closed) == term


def test_realised_gain_of_a_cover_is_inverted() -> None:
    assert realised_gain(Side.BUY, Decimal(10), Decimal("90"), Decimal("100")) == Decimal("100.00")
    assert realised_gain(Side.SELL, Decimal(10), Decimal("90"), Decimal("100")) == Decimal(
        "-100.00"
    )
