"""Reading the week's research report for the Saturday review (SPEC §6).

The report is fetched from the account's provider, stored (hash, source,
received time) whether it parses or not, and turned into per-symbol advice for
the rule engine. A provider failure or a rejected report costs the review its
research, never its rules: the loss cuts and stop approaches still run, and
nothing the bad report says is executed. The operator hears about it through a
log line and the notifier.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

import structlog

from rebalancerd.domain.model import ResearchAdvice
from rebalancerd.domain.report_parser import ReportError, parse_report
from rebalancerd.domain.timing import market_date
from rebalancerd.errors import RebalancerdError
from rebalancerd.ports import ResearchReport, ResearchSource, Store
from rebalancerd.services.accounts import AccountContext

log = structlog.get_logger(__name__)

SourceFactory = Callable[[AccountContext], ResearchSource | None]


class ReportAlerts(Protocol):
    """How the operator hears that a week's research could not be used."""

    def report_rejected(self, account: str, source: str, error: str) -> None: ...


ContextWriter = Callable[[AccountContext, Path], None]


@dataclass(frozen=True)
class ResearchOutcome:
    """What the review learnt from research: advice by symbol, or why there is none."""

    report: ResearchReport | None = None
    advice: dict[str, ResearchAdvice] = field(default_factory=dict)
    status: str = "none"  # none | parsed | rejected | failed | not_configured
    error: str | None = None


class ResearchService:
    def __init__(
        self,
        store: Store,
        source_for: SourceFactory,
        write_context: ContextWriter,
        alerts: ReportAlerts | None = None,
    ):
        self.store = store
        self.source_for = source_for
        self.write_context = write_context
        self.alerts = alerts

    def fetch(self, ctx: AccountContext, now: datetime) -> ResearchOutcome:
        research = ctx.config.research
        if research is None:
            return ResearchOutcome(status="not_configured")
        if research.write_context is not None:
            self.write_context(ctx, research.write_context)
        source = self.source_for(ctx)
        if source is None:
            return ResearchOutcome(status="not_configured")
        try:
            report = source.latest_report(ctx.name, now=now)
        except RebalancerdError as exc:
            log.error("research_failed", account=ctx.name, error=str(exc))
            self._alert(ctx.name, repr(source), f"research provider failed: {exc}")
            return ResearchOutcome(status="failed", error=str(exc))
        if report is None:
            reason = getattr(source, "last_skip_reason", None)
            log.warning("research_report_missing", account=ctx.name, reason=reason)
            return ResearchOutcome(status="none", error=reason)
        return self._parse(ctx, report)

    def _parse(self, ctx: AccountContext, report: ResearchReport) -> ResearchOutcome:
        try:
            parsed = parse_report(
                report.text,
                report_date=market_date(report.received_at, ctx.tz),
                source=report.source,
            )
        except ReportError as exc:
            stored = self.store.save_report(report, status="rejected", error=str(exc))
            log.error(
                "research_report_rejected",
                account=ctx.name,
                report_id=stored.id,
                source=report.source,
                line=exc.line,
                error=str(exc),
            )
            self._alert(ctx.name, report.source, str(exc))
            return ResearchOutcome(report=stored, status="rejected", error=str(exc))
        stored = self.store.save_report(report, status="parsed")
        advice = parsed.to_advice(stored.id)
        log.info(
            "research_report_used",
            account=ctx.name,
            report_id=stored.id,
            source=report.source,
            sha256=report.sha256[:12],
            recommendations={s: a.action.value for s, a in advice.items()},
        )
        return ResearchOutcome(report=stored, advice=advice, status="parsed")

    def _alert(self, account: str, source: str, error: str) -> None:
        if self.alerts is not None:
            self.alerts.report_rejected(account, source, error)
