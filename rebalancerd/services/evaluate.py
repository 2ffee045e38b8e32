"""The Saturday review and the 16:30 guards: rules → persisted decisions.

Both jobs are the same service run with a different rule block. It reads the
account, runs the pure rules, orders the candidates by the cap priority and
persists one decision per candidate before anything could reach a broker. The
weekly slot is taken by the store in the same transaction as the decision, so
the cap holds across runs, restarts and racing processes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal

import structlog

from rebalancerd.domain.caps import SimulatedSlots, takes_slot
from rebalancerd.domain.model import (
    Action,
    Block,
    Proposal,
    ResearchAdvice,
    RuleBlock,
    SkipReason,
    Status,
)
from rebalancerd.domain.rules import evaluate_position
from rebalancerd.domain.timing import (
    MARKET_OPEN,
    market_date,
    next_execution,
    next_market_open,
    slot_week,
)
from rebalancerd.ports import CapClaim, DecisionRecord, NewDecision, Store
from rebalancerd.services.accounts import AccountContext, read_account

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RunOptions:
    """How a run may act: ``enabled`` is the master switch, ``dry_run`` the flag."""

    enabled: bool = True
    dry_run: bool = False
    execution_weekday: int = 0
    execution_at: time = MARKET_OPEN

    @property
    def real(self) -> bool:
        return self.enabled and not self.dry_run


def block_applies(ctx: AccountContext, block: Block) -> bool:
    """SPEC §14: a job that does not apply to the account's mode does nothing."""
    mode = ctx.config.mode
    return mode.has_weekly_review if block is Block.WEEKLY else mode.has_daily_guard


def _execute_at(ctx: AccountContext, block: Block, now: datetime, opts: RunOptions) -> datetime:
    if block is Block.DAILY:
        return next_market_open(now, ctx.tz, ctx.calendar)
    return next_execution(
        now, ctx.tz, ctx.calendar, weekday=opts.execution_weekday, at=opts.execution_at
    )


def _empty_block(block: Block) -> RuleBlock:
    return RuleBlock(block=block)


class EvaluationService:
    """Runs one rule block over one account and records the decisions."""

    def __init__(self, store: Store):
        self.store = store

    def run(
        self,
        ctx: AccountContext,
        block: Block,
        now: datetime,
        opts: RunOptions,
        advice: Mapping[str, ResearchAdvice] | None = None,
    ) -> list[DecisionRecord]:
        if not block_applies(ctx, block):
            log.info("job_not_applicable", account=ctx.name, block=block.value)
            return []
        rule_block = ctx.config.rule_block(block) or _empty_block(block)
        state = read_account(ctx, self.store, now)
        equity = state.portfolio.equity
        today = market_date(now, ctx.tz)
        advice = advice or {}
        proposals = [
            proposal
            for p in state.portfolio.positions
            if (
                proposal := evaluate_position(
                    p,
                    rule_block,
                    equity,
                    today,
                    advice.get(p.symbol),
                    research_can_veto=ctx.config.research_can_veto,
                )
            )
            is not None
        ]
        proposals.sort(key=lambda pr: pr.priority)
        execute_at = _execute_at(ctx, block, now, opts)
        log.info(
            "evaluation_started",
            account=ctx.name,
            block=block.value,
            positions=len(state.portfolio.positions),
            candidates=len(proposals),
            equity=str(equity),
            execute_at=execute_at.isoformat(),
            dry_run=opts.dry_run,
            enabled=opts.enabled,
        )
        recorder = _Recorder(self.store, ctx, block, now, opts, execute_at)
        records = [recorder.record(proposal) for proposal in proposals]
        held = {p.symbol for p in state.portfolio.positions}
        return records + [recorder.record_entry(a) for a in _entries(ctx.name, advice, held)]


def _entries(
    account: str, advice: Mapping[str, ResearchAdvice], held: set[str]
) -> list[ResearchAdvice]:
    """BUY advice for symbols not held; other advice on symbols not held is logged and dropped."""
    entries = []
    for symbol, item in sorted(advice.items()):
        if item.action is Action.BUY and symbol not in held:
            entries.append(item)
        elif symbol not in held and item.action is not Action.HOLD:
            log.warning(
                "research_advice_ignored",
                account=account,
                symbol=symbol,
                action=item.action.value,
                reason="not_held",
            )
        elif item.action is Action.BUY:
            log.info(
                "research_advice_ignored",
                account=account,
                symbol=symbol,
                action="BUY",
                reason="already_held",
            )
    return entries


class _Recorder:
    """Turns sorted proposals into stored decisions, one at a time."""

    def __init__(
        self,
        store: Store,
        ctx: AccountContext,
        block: Block,
        now: datetime,
        opts: RunOptions,
        execute_at: datetime,
    ):
        self.store, self.ctx, self.block, self.now, self.opts = store, ctx, block, now, opts
        self.execute_at = execute_at
        self.week = slot_week(execute_at, ctx.tz)
        self.open_symbols = store.open_decision_symbols(ctx.name)
        held = len(store.slots(ctx.name, self.week))
        self.simulated = SimulatedSlots(ctx.config.max_exits_per_week, held)
        self.needs_approval = ctx.config.needs_approval(market_date(now, ctx.tz))

    def _outcome(self, proposal: Proposal) -> tuple[Status, SkipReason | None, CapClaim | None]:
        capped = takes_slot(proposal.action, self.block.source, self.ctx.config.cap_sources)
        if proposal.action is Action.HOLD:
            return Status.SKIPPED, SkipReason.VETOED, None
        if proposal.symbol in self.open_symbols:
            return Status.SKIPPED, SkipReason.OPEN_DECISION, None
        if proposal.is_too_small:
            return Status.SKIPPED, SkipReason.TOO_SMALL, None
        if not self.opts.real and capped and not self.simulated.take():
            return Status.SKIPPED, SkipReason.WEEKLY_CAP_REACHED, None
        status, skip_reason = self._going_ahead()
        real_claim = capped and self.opts.real
        claim = CapClaim(self.week, self.ctx.config.max_exits_per_week) if real_claim else None
        return status, skip_reason, claim

    def _going_ahead(self) -> tuple[Status, SkipReason | None]:
        """What the master switch, dry run and approval make of a decision that goes ahead."""
        if not self.opts.real:
            if self.opts.dry_run:
                return Status.DRY_RUN, None
            return Status.SKIPPED, SkipReason.DISABLED
        return (Status.PENDING_APPROVAL if self.needs_approval else Status.APPROVED), None

    def record_entry(self, advice: ResearchAdvice) -> DecisionRecord:
        """A research BUY: sized at execution from its weight and the cash left."""
        status, skip_reason = self._entry_outcome(advice.symbol)
        inputs = {"weight": str(advice.weight)} if advice.weight is not None else {}
        if advice.catalyst_date is not None:
            inputs["catalyst_date"] = advice.catalyst_date.isoformat()
        if advice.report_id is not None:
            inputs["report_id"] = str(advice.report_id)
        detail = f"research: {advice.reason}" if advice.reason else "research recommends entry"
        new = NewDecision(
            account=self.ctx.name,
            source=self.block.source,
            symbol=advice.symbol,
            action=Action.BUY,
            qty=Decimal(0),
            reasons=["research"],
            details=[detail],
            inputs=inputs,
            execute_at=self.execute_at,
            status=status,
            created_at=self.now,
            skip_reason=skip_reason,
            report_id=advice.report_id,
        )
        return self._log(self.store.record_decision(new, None))

    def _entry_outcome(self, symbol: str) -> tuple[Status, SkipReason | None]:
        if symbol in self.open_symbols:
            return Status.SKIPPED, SkipReason.OPEN_DECISION
        return self._going_ahead()

    def record(self, proposal: Proposal) -> DecisionRecord:
        status, skip_reason, claim = self._outcome(proposal)
        hits = proposal.hits or proposal.vetoed
        action = proposal.action
        if action is Action.HOLD:
            # A vetoed candidate is recorded as the exit it would have been.
            action = Action.EXIT if any(h.action is Action.EXIT for h in hits) else Action.TRIM
        fraction = None
        if action is Action.TRIM and proposal.inputs.get("qty"):
            held = abs(Decimal(proposal.inputs["qty"]))
            fraction = (proposal.qty / held).quantize(Decimal("0.0001")) if held else None
        new = NewDecision(
            account=self.ctx.name,
            source=self.block.source,
            symbol=proposal.symbol,
            action=action,
            qty=proposal.qty if proposal.action is not Action.HOLD else max(h.qty for h in hits),
            reasons=[h.rule.value for h in hits],
            details=[h.detail for h in hits],
            inputs=dict(proposal.inputs),
            execute_at=self.execute_at,
            status=status,
            created_at=self.now,
            skip_reason=skip_reason,
            fraction=fraction,
            profit_level=proposal.profit_level,
            report_id=_report_id(proposal),
        )
        return self._log(self.store.record_decision(new, claim))

    def _log(self, record: DecisionRecord) -> DecisionRecord:
        if record.status not in (Status.SKIPPED, Status.DRY_RUN):
            self.open_symbols.add(record.symbol)
        log.info(
            "decision_recorded",
            decision_id=record.id,
            account=record.account,
            source=record.source.value,
            symbol=record.symbol,
            action=record.action.value,
            qty=str(record.qty),
            status=record.status.value,
            skip_reason=record.skip_reason.value if record.skip_reason else None,
            reasons=list(record.reasons),
            why="; ".join(record.details),
            execute_at=record.execute_at.isoformat(),
        )
        return record


def _report_id(proposal: Proposal) -> int | None:
    """The stored report a decision came from, when research took part in it."""
    text = proposal.inputs.get("report_id")
    return int(text) if text else None
