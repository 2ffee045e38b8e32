"""The research step of the review against a real store (SQLite and PostgreSQL):
every report is stored, a rejected one gives no advice, a failing provider
costs the review its research and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from rebalancerd.adapters.calendar import NyseCalendar
from rebalancerd.adapters.db.models import research_reports
from rebalancerd.adapters.db.store import SqlStore
from rebalancerd.adapters.research import ResearchProviderError, make_report
from rebalancerd.config.models import AccountConfig
from rebalancerd.domain.model import Action
from rebalancerd.ports import ResearchReport
from rebalancerd.services.accounts import AccountContext
from rebalancerd.services.research import ResearchService

NOW = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)
GOOD = "## PORTFOLIO REBALANCING\n### EXITS\n- **ENPH**: EXIT - catalyst passed\n"
BAD = "## PORTFOLIO REBALANCING\n### EXITS\n- **ENPH**: EXIT - fine\n- **AMD**: MAYBE - hmm\n"


class ListSource:
    """A research source returning a fixed text, or raising."""

    def __init__(self, text: str | None = None, error: str | None = None):
        self.text, self.error = text, error
        self.last_skip_reason = "no report newer than 7 days"

    def latest_report(self, account: str, *, now: datetime) -> ResearchReport | None:
        if self.error:
            raise ResearchProviderError(self.error)
        return None if self.text is None else make_report(account, "test:list", self.text, now)


class Notes:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def report_rejected(self, account: str, source: str, error: str) -> None:
        self.events.append((account, source, error))


def account(tmp_path: Path, write_context: bool = False) -> AccountContext:
    research: dict[str, Any] = {"provider": "command", "command": "cat"}
    if write_context:
        research["write_context"] = str(tmp_path / "ctx" / "dee-bot.md")
    config = AccountConfig.model_validate({"broker": "alpaca", "research": research})
    return AccountContext("dee-bot", config, None, ZoneInfo("America/New_York"), NyseCalendar())  # type: ignore[arg-type]


def service(store: SqlStore, source: ListSource, notes: Notes | None = None) -> ResearchService:
    def write(ctx: AccountContext, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"context of {ctx.name}", encoding="utf-8")

    return ResearchService(store, lambda ctx: source, write, notes)


def stored(store: SqlStore) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(research_reports)).mappings()]


def test_a_parsed_report_is_stored_and_its_advice_points_at_it(
    store: SqlStore, tmp_path: Path
) -> None:
    outcome = service(store, ListSource(GOOD)).fetch(account(tmp_path, True), NOW)
    assert outcome.status == "parsed" and outcome.report is not None
    assert outcome.advice["ENPH"].action is Action.EXIT
    assert outcome.advice["ENPH"].report_id == outcome.report.id
    (row,) = stored(store)
    assert (row["status"], row["source"], row["text"]) == ("parsed", "test:list", GOOD)
    assert row["sha256"] == outcome.report.sha256
    assert (tmp_path / "ctx" / "dee-bot.md").read_text() == "context of dee-bot"


def test_a_rejected_report_is_stored_with_its_line_and_gives_no_advice(
    store: SqlStore, tmp_path: Path
) -> None:
    notes = Notes()
    outcome = service(store, ListSource(BAD), notes).fetch(account(tmp_path), NOW)
    assert (outcome.status, outcome.advice) == ("rejected", {})
    assert outcome.error is not None and "line 4" in outcome.error
    (row,) = stored(store)
    assert row["status"] == "rejected" and "line 4" in row["error"]
    assert [(a, s) for a, s, _ in notes.events] == [("dee-bot", "test:list")]


def test_a_failing_provider_is_reported_and_nothing_is_stored(
    store: SqlStore, tmp_path: Path
) -> None:
    notes = Notes()
    outcome = service(store, ListSource(error="command timed out after 300 s"), notes).fetch(
        account(tmp_path), NOW
    )
    assert (outcome.status, outcome.advice) == ("failed", {})
    assert stored(store) == []
    ((who, _, error),) = notes.events
    assert who == "dee-bot" and error.endswith("command timed out after 300 s")


def test_no_report_this_week_says_why(store: SqlStore, tmp_path: Path) -> None:
    outcome = service(store, ListSource(None)).fetch(account(tmp_path), NOW)
    assert (outcome.status, outcome.error) == ("none", "no report newer than 7 days")
    assert stored(store) == []
