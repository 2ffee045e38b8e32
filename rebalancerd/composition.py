"""The one place that builds adapters from settings.

Nothing else in the package constructs engines, brokers or clocks from config,
and nothing is built at import time: the CLI and the daemon call
:func:`build_app` with loaded settings and get a wired :class:`App` back.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from rebalancerd.adapters.calendar import NyseCalendar
from rebalancerd.adapters.clock import SystemClock
from rebalancerd.adapters.db.engine import make_engine
from rebalancerd.adapters.db.migrate import upgrade_to_head
from rebalancerd.adapters.db.store import SqlStore
from rebalancerd.adapters.notify import Notifications, NullNotifier, build_notifications
from rebalancerd.adapters.research import (
    AnthropicResearchSource,
    CommandResearchSource,
    FolderResearchSource,
)
from rebalancerd.adapters.sim_broker import SimBroker
from rebalancerd.adapters.sim_state import MARKET_TZ
from rebalancerd.config.portfolio_file import load_sim_portfolio
from rebalancerd.config.settings import AccountConfig, Settings
from rebalancerd.errors import ConfigError
from rebalancerd.ports import Broker, Clock, ResearchSource, Store
from rebalancerd.services.accounts import AccountContext
from rebalancerd.services.approval import ApprovalService
from rebalancerd.services.context_render import render_context_markdown
from rebalancerd.services.evaluate import EvaluationService, RunOptions
from rebalancerd.services.execute import ExecutionService
from rebalancerd.services.orders import OrderSender
from rebalancerd.services.reconcile import Reconciler
from rebalancerd.services.research import ResearchService
from rebalancerd.services.research_context import build_context

BrokerFactory = Callable[[str, AccountConfig, Store, Clock], Broker]


def build_broker(
    name: str,
    config: AccountConfig,
    store: Store,
    clock: Clock,
    *,
    environ: Mapping[str, Any] | None = None,
    tz: ZoneInfo = MARKET_TZ,
) -> Broker:
    """The broker adapter an account's ``broker`` key asks for.

    Alpaca keys come from ``environ`` (build_app passes the settings' secrets:
    the environment and ``.env``), else from the process environment.
    """
    if config.broker == "alpaca":
        # Imported here: alpaca-py pulls in pandas (~1 s), which a sim-only
        # operator's every CLI command should not pay for.
        from rebalancerd.adapters.alpaca import build_alpaca_broker

        return build_alpaca_broker(
            name,
            key_env=config.key_env,
            secret_env=config.secret_env,
            live=config.live,
            base_url=config.base_url,
            environ=os.environ if environ is None else environ,
        )
    if config.broker == "sim":
        if config.sim_portfolio is None:  # pragma: no cover - validated at load
            raise ConfigError("required for broker = 'sim'", key=f"accounts.{name}.sim_portfolio")
        spec = load_sim_portfolio(config.sim_portfolio)
        fingerprint = hashlib.sha256(config.sim_portfolio.read_bytes()).hexdigest()
        return SimBroker(name, spec, store, clock, spec_fingerprint=fingerprint, tz=tz)
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
    #: seconds the execution waits for an order to fill (exits before entries)
    fill_timeout: float = 30.0
    notifier: Notifications = field(
        default_factory=lambda: Notifications(NullNotifier(), ZoneInfo("UTC"))
    )
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
        return render_context_markdown(build_context(ctx, self.store, self.clock.now()))

    def _write_context(self, ctx: AccountContext, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.context_markdown(ctx.name), encoding="utf-8")

    @property
    def research(self) -> ResearchService:
        return ResearchService(
            self.store,
            lambda ctx: build_research_source(ctx, self.settings, self.context_markdown),
            self._write_context,
            self.notifier,
        )

    @property
    def execution(self) -> ExecutionService:
        sender = OrderSender(self.store, self.clock, fill_timeout=self.fill_timeout)
        return ExecutionService(self.store, sender)

    @property
    def reconciliation(self) -> Reconciler:
        """Start-up reconciliation: ``app.reconciliation.run(app.account(name), now)``."""
        return Reconciler(self.store, self.clock, OrderSender(self.store, self.clock))

    @property
    def approval(self) -> ApprovalService:
        return ApprovalService(self.store, self.account, self.calendar, self.tz)

    def close(self) -> None:
        self.notifier.close()
        self.engine.dispose()


def build_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    migrate: bool = True,
    broker_factory: BrokerFactory | None = None,
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
        broker_factory=broker_factory
        or partial(build_broker, environ=secret_environ(settings), tz=ZoneInfo(settings.timezone)),
        notifier=_notifications(settings),
        fill_timeout=float(settings.fill_timeout_seconds),
    )


def _notifications(settings: Settings) -> Notifications:
    env = settings.notifications.webhook_url_env
    url = settings.secret(env) if env else None
    return build_notifications(
        settings.notifications,
        url.get_secret_value() if url is not None else None,
        ZoneInfo(settings.timezone),
    )


def secret_environ(settings: Settings) -> dict[str, Any]:
    """The brokers' key variables as loaded with the settings (environment or .env)."""
    names = {n for a in settings.accounts.values() for n in (a.key_env, a.secret_env)}
    return {n: value for n in names if (value := settings.secret(n)) is not None}
