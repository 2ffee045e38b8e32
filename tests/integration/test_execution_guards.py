"""Execution's guards against acting twice or at the wrong time, on the demo
account (SQLite, simulated broker): a closed market defers everything, a
decision claimed by another execution is left alone, a symbol is bought once."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rebalancerd.adapters.clock import FixedClock
from rebalancerd.composition import App, build_app, build_broker
from rebalancerd.config.settings import load_settings
from rebalancerd.domain.model import Action, Block, ResearchAdvice, Status
from rebalancerd.errors import InvalidTransition
from rebalancerd.ports import Broker, DecisionFilter
from rebalancerd.services.jobs import Jobs
from tests.e2e.conftest import example_config

NY = ZoneInfo("America/New_York")
SATURDAY = datetime(2026, 11, 28, 12, 0, tzinfo=NY)
MONDAY = datetime(2026, 11, 30, 9, 30, tzinfo=NY)


class Watched:
    """The simulated broker, with the market closed on demand and every call counted."""

    def __init__(self, inner: Broker, market_open: bool = True):
        self.inner, self.market_open = inner, market_open
        self.calls: list[str] = []
        self.broken: set[str] = set()

    def market_is_open(self) -> bool:
        return self.market_open

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        if name in self.broken:
            raise RuntimeError(f"adapter bug in {name}")
        return getattr(self.inner, name)


class RacingStore:
    """The store, with another execution claiming every approved decision between
    our read of it and our claim (our claim then fails, as the real race does)."""

    def __init__(self, inner: Any):
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def transition(self, decision_id: int, new_status: Status, **kw: Any) -> Any:
        current = self.inner.get_decision(decision_id).status
        if new_status is Status.SUBMITTED and current is Status.APPROVED:
            self.inner.transition(decision_id, new_status, **kw)
            raise InvalidTransition("approved -> submitted: already submitted")
        return self.inner.transition(decision_id, new_status, **kw)


def demo_app(
    tmp_path: Path, at: datetime, brokers: dict[str, Watched], replace: dict[str, str] | None = None
) -> App:
    config = example_config(tmp_path, replace=replace)
    settings = load_settings(config, environ={}, env_file=None)

    def factory(name: str, config: Any, store: Any, clock: Any) -> Broker:
        brokers[name] = Watched(build_broker(name, config, store, clock, environ={}))
        return brokers[name]  # type: ignore[return-value]

    return build_app(settings, clock=FixedClock(at), broker_factory=factory)


def reviewed(tmp_path: Path) -> None:
    app = demo_app(tmp_path, SATURDAY, {})
    Jobs(app).review(["dee-bot"])
    app.close()


def statuses(app: App) -> dict[str, Status]:
    found = app.store.list_decisions(DecisionFilter(account="dee-bot"))
    return {d.symbol: d.status for d in found if d.action is not Action.BUY}


def test_a_closed_market_defers_the_execution_and_touches_nothing(tmp_path: Path) -> None:
    reviewed(tmp_path)
    brokers: dict[str, Watched] = {}
    app = demo_app(tmp_path, MONDAY, brokers)
    app.account("dee-bot")
    brokers["dee-bot"].market_open = False
    brokers["dee-bot"].calls.clear()
    assert Jobs(app).execute(["dee-bot"]).decisions == []
    assert not {"cancel_order", "submit_order"} & set(brokers["dee-bot"].calls)
    assert set(statuses(app).values()) == {Status.APPROVED, Status.SKIPPED}
    # At the open they go out.
    brokers["dee-bot"].market_open = True
    Jobs(app).execute(["dee-bot"])
    assert statuses(app)["SHOP"] is Status.FILLED


def test_a_decision_claimed_elsewhere_is_left_alone(tmp_path: Path) -> None:
    reviewed(tmp_path)
    brokers: dict[str, Watched] = {}
    app = demo_app(tmp_path, MONDAY, brokers)
    app.store = RacingStore(app.store)  # type: ignore[assignment]
    app.account("dee-bot")
    brokers["dee-bot"].calls.clear()
    Jobs(app).execute(["dee-bot"])
    assert not {"cancel_order", "submit_order"} & set(brokers["dee-bot"].calls)


def test_a_symbol_is_bought_once_however_many_reviews_proposed_it(tmp_path: Path) -> None:
    reviewed(tmp_path)
    app = demo_app(tmp_path, SATURDAY, {})
    advice = {"TSLA": ResearchAdvice("TSLA", Action.BUY, reason="catalyst", weight=None)}
    ctx = app.account("dee-bot")
    opts = app.run_options()
    first = app.evaluation.run(ctx, Block.WEEKLY, SATURDAY, opts, advice)
    second = app.evaluation.run(ctx, Block.WEEKLY, SATURDAY, opts, advice)
    buys = [d for d in first + second if d.action is Action.BUY]
    assert [(d.status, d.skip_reason and d.skip_reason.value) for d in buys] == [
        (Status.APPROVED, None),
        (Status.SKIPPED, "open_decision"),
    ]


def test_one_accounts_unexpected_error_does_not_cost_the_others(tmp_path: Path) -> None:
    brokers: dict[str, Watched] = {}
    app = demo_app(tmp_path, SATURDAY, brokers)
    app.account("dee-bot")

    brokers["dee-bot"].broken.add("get_account")
    result = Jobs(app).review(["dee-bot", "shorgan-bot"])
    assert list(result.failures) == ["dee-bot"] and "adapter bug" in result.failures["dee-bot"]
    assert {d.account for d in result.decisions} == {"shorgan-bot"}
    runs = {(r.account, r.outcome) for r in app.store.list_runs()}
    assert {("dee-bot", "failed"), ("shorgan-bot", "succeeded")} <= runs


def test_the_dispatcher_resumes_decisions_left_submitted(tmp_path: Path) -> None:
    """Not only approved decisions that are due: one a crash or a slow fill left
    ``submitted`` is picked up at the next dispatch, whatever its execute_at."""
    from rebalancerd.daemon.health import Metrics
    from rebalancerd.daemon.plan import build_triggers
    from rebalancerd.daemon.work import DaemonWork

    reviewed(tmp_path)
    app = demo_app(tmp_path, SATURDAY, {})
    work = DaemonWork(lambda: (app, build_triggers(app.settings, app.calendar)), Metrics(dict))
    tuesday = datetime(2026, 11, 24, 10, 0, tzinfo=NY)  # before Monday's execute_at
    assert work._accounts_with_due_decisions(app, tuesday) == []
    shop = next(
        d for d in app.store.list_decisions(DecisionFilter(account="dee-bot")) if d.symbol == "SHOP"
    )
    app.store.transition(shop.id, Status.SUBMITTED, at=SATURDAY)
    assert work._accounts_with_due_decisions(app, tuesday) == ["dee-bot"]


def test_an_account_switched_off_executes_nothing(tmp_path: Path) -> None:
    reviewed(tmp_path)
    brokers: dict[str, Watched] = {}
    off = {'mode = "weekly"': 'mode = "off"'}
    app = demo_app(tmp_path, MONDAY, brokers, replace=off)
    app.account("dee-bot")
    brokers["dee-bot"].calls.clear()
    assert Jobs(app).execute(["dee-bot"]).decisions == []
    assert not {"cancel_order", "submit_order"} & set(brokers["dee-bot"].calls)
    assert set(statuses(app).values()) == {Status.APPROVED, Status.SKIPPED}
