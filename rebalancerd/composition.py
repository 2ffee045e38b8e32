"""The one place that builds adapters from settings.

Nothing else in the package constructs engines, brokers or clocks from config,
and nothing is built at import time: the CLI and the daemon call
:func:`build_app` with loaded settings and get a wired :class:`App` back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from rebalancerd.adapters.calendar import NyseCalendar
from rebalancerd.adapters.clock import SystemClock
from rebalancerd.adapters.db.engine import make_engine
from rebalancerd.adapters.db.migrate import upgrade_to_head
from rebalancerd.adapters.db.store import SqlStore
from rebalancerd.adapters.research import (
    AnthropicResearchSource,
    CommandResearchSource,
    FolderResearchSource,
)
from rebalancerd.adapters.sim_broker import SimBroker
from rebalancerd.config.portfolio_file import load_sim_portfolio
from rebalancerd.config.settings import AccountConfig, Settings
from rebalancerd.errors import ConfigError
from rebalancerd.ports import Broker, Clock, ResearchSource, Store
from rebalancerd.services.accounts import AccountContext
from rebalancerd.services.context_render import render_context_markdown
from rebalancerd.services.evaluate import EvaluationService, RunOptions
from rebalancerd.services.execute import ExecutionService
from rebalancerd.services.orders import OrderSender
from rebalancerd.services.research import ResearchService
from rebalancerd.services.research_context import build_context

BrokerFactory = Callable[[str, AccountConfig, Store, Clock], Broker]


def build_broker(name: str, config: AccountConfig, store: Store, clock: Clock) -> Broker:
    """The broker adapter an account's ``broker`` key asks for."""
    if config.broker == "sim":
        if config.sim_portfolio is None:  # pragma: no cover - validated at load
            raise ConfigError("required for broker = 'sim'", key=f"accounts.{name}.sim_portfolio")
        spec = load_sim_portfolio(config.sim_portfolio)
        fingerprint = hashlib.sha256(config.sim_portfolio.read_bytes()).hexdigest()
        return SimBroker(name, spec, store, clock, spec_fingerprint=fingerprint)
    raise ConfigError(
        f"broker {config.broker!r} is not available in this build",
        key=f"accounts.{name}.broker",
    )


DEFAULT_PROMPT = (
    "You are the research analyst of the trading account {account}. Review its "
    "portfolio below and answer with the rebalancing block exactly as described.\n\n"
    "{context}"
)


def build_research_source(
    ctx: AccountContext, settings: Settings, context_text: Callable[[str], str]
) -> ResearchSource | None:
    """The research provider an account's ``[research]`` table asks for."""
    research = ctx.config.research
    if research is None:
        return None
    key = f"accounts.{ctx.name}.research"
    if research.provider == "folder":
        assert research.path is not None  # validated at load
        return FolderResearchSource(research.path, research.pattern, research.max_age_days)
    if research.provider == "command":
        assert research.command is not None
        return CommandResearchSource(
            research.command,
            timeout_seconds=research.timeout_seconds,
            context_provider=context_text,
        )
    api_key = settings.secret(research.api_key_env)
    if api_key is None:
        raise ConfigError(f"{research.api_key_env} is not set in the environment", key=key)
    assert research.model is not None
    return AnthropicResearchSource(
        api_key,
        research.model,
        research.prompt_template or DEFAULT_PROMPT,
        context_text,
        timeout=research.timeout_seconds,
    )


@dataclass
class App:
    settings: Settings
    engine: Engine
    store: SqlStore
    clock: Clock
    calendar: NyseCalendar
    tz: ZoneInfo
    broker_factory: BrokerFactory = build_broker
    _contexts: dict[str, AccountContext] = field(default_factory=dict)

    def account(self, name: str) -> AccountContext:
        """The account's context, its broker built on first use."""
        if name not in self._contexts:
            config = self.settings.accounts[name]
            broker = self.broker_factory(name, config, self.store, self.clock)
            self._contexts[name] = AccountContext(name, config, broker, self.tz, self.calendar)
        return self._contexts[name]

    def run_options(self, dry_run: bool = False) -> RunOptions:
        weekday, at = self.settings.schedule.execution_at
        return RunOptions(
            enabled=self.settings.enabled,
            dry_run=dry_run or self.settings.dry_run,
            execution_weekday=weekday,
            execution_at=at,
        )

    @property
    def evaluation(self) -> EvaluationService:
        return EvaluationService(self.store)

    def context_markdown(self, name: str) -> str:
        """The research context of an account, as handed to the research generator."""
        ctx = self.account(name)
        return render_context_markdown(
            build_context(ctx, self.store, self.clock.now(), self.run_options())
        )

    def _write_context(self, ctx: AccountContext, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.context_markdown(ctx.name), encoding="utf-8")

    @property
    def research(self) -> ResearchService:
        return ResearchService(
            self.store,
            lambda ctx: build_research_source(ctx, self.settings, self.context_markdown),
            self._write_context,
        )

    @property
    def execution(self) -> ExecutionService:
        return ExecutionService(self.store, OrderSender(self.store, self.clock))

    def close(self) -> None:
        self.engine.dispose()


def build_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    migrate: bool = True,
    broker_factory: BrokerFactory = build_broker,
) -> App:
    engine = make_engine(settings.database_url)
    if migrate:
        upgrade_to_head(engine)
    return App(
        settings=settings,
        engine=engine,
        store=SqlStore(engine),
        clock=clock or SystemClock(),
        calendar=NyseCalendar(settings.schedule.extra_closures),
        tz=ZoneInfo(settings.timezone),
        broker_factory=broker_factory,
    )
