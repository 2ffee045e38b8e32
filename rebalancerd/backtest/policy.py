"""Policies a backtest compares: the proposal's presets and any configured account.

A policy is an account's trading-relevant config (mode, rule blocks, weekly cap,
protective stop, schedule) with everything else stripped. Presets are built from
:class:`RuleBlockConfig` like a config file would be, so they pass the same
validation; :func:`with_override` re-validates a swept key the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import time
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from rebalancerd.config.models import AccountConfig, RuleBlockConfig, ScheduleConfig
from rebalancerd.domain.model import Block, Mode, RuleBlock, Source
from rebalancerd.errors import UsageError

_HUNDRED = Decimal(100)
DEFAULT_STOP_PCT = Decimal(15)


@dataclass(frozen=True)
class Schedule:
    """When the weekly review looks and when its exits execute (weekday: Monday = 0)."""

    review_weekday: int = 5
    review_at: time = time(12, 0)
    execution_weekday: int = 0
    execution_at: time = time(9, 30)

    @classmethod
    def from_config(cls, config: ScheduleConfig) -> Schedule:
        review_day, review_at = config.weekly_review_at
        exec_day, exec_at = config.execution_at
        return cls(review_day, review_at, exec_day, exec_at)


@dataclass(frozen=True)
class Policy:
    """Percent numbers as in the config file (``blocks``); see :meth:`rule_block`."""

    name: str
    mode: Mode
    blocks: dict[Block, RuleBlockConfig] = field(default_factory=dict)
    max_exits_per_week: int = 5
    cap_sources: frozenset[Source] = frozenset({Source.WEEKLY_REVIEW})
    stop_loss_pct: Decimal | None = DEFAULT_STOP_PCT
    research_can_veto: bool = True
    schedule: Schedule = field(default_factory=Schedule)
    label: str = ""

    def rule_block(self, block: Block) -> RuleBlock | None:
        """The block the engine runs, or None when the mode does not run it."""
        runs = self.mode.has_weekly_review if block is Block.WEEKLY else self.mode.has_daily_guard
        config = self.blocks.get(block)
        if not runs:
            return None
        if config is None:
            return RuleBlock(block=block)
        return config.to_rule_block(block, self.stop_loss_pct)

    @property
    def stop_fraction(self) -> Decimal | None:
        return None if self.stop_loss_pct is None else self.stop_loss_pct / _HUNDRED

    @property
    def max_entry_fraction(self) -> Decimal | None:
        """No entry opens above the smallest ``max_position_pct`` of a running block."""
        limits = [
            rb.max_position_pct
            for b in Block
            if (rb := self.rule_block(b)) is not None and rb.max_position_pct is not None
        ]
        return min(limits) if limits else None

    @property
    def display(self) -> str:
        return self.label or self.name


def _block(**values: Any) -> RuleBlockConfig:
    return RuleBlockConfig.model_validate(values)


def presets() -> dict[str, Policy]:
    """The proposal's three options and "no rebalancing" (SPEC §2 defaults)."""
    weekly = _block(stale_days=14, stale_move_pct=5, max_position_pct=15, stop_buffer_pct=5)
    daily = _block(
        profit_take_pct=25,
        profit_take_fraction=Decimal("0.5"),
        loss_cut_pct=12,
        stale_days=30,
        stale_move_pct=5,
        max_position_pct=20,
    )
    hybrid_daily = _block(profit_take_pct=30, profit_take_fraction=Decimal("0.5"), loss_cut_pct=13)
    return {
        "none": Policy("none", Mode.OFF),
        "weekly": Policy("weekly", Mode.WEEKLY, {Block.WEEKLY: weekly}),
        "daily": Policy("daily", Mode.DAILY, {Block.DAILY: daily}),
        "hybrid": Policy("hybrid", Mode.HYBRID, {Block.WEEKLY: weekly, Block.DAILY: hybrid_daily}),
    }


def from_account(name: str, account: AccountConfig, schedule: ScheduleConfig) -> Policy:
    blocks = {b: c for b in Block if (c := account.block_config(b)) is not None}
    return Policy(
        name=name,
        mode=account.mode,
        blocks=blocks,
        max_exits_per_week=account.max_exits_per_week,
        cap_sources=frozenset(account.cap_sources),
        stop_loss_pct=account.stop_loss_pct,
        research_can_veto=account.research_can_veto,
        schedule=Schedule.from_config(schedule),
    )


_ACCOUNT_KEYS = ("max_exits_per_week", "stop_loss_pct")


def _parse_value(key: str, text: str) -> Any:
    if key == "max_exits_per_week" or key == "stale_days":
        try:
            return int(text)
        except ValueError:
            raise UsageError(f"--sweep {key}: {text!r} is not a whole number") from None
    try:
        return Decimal(text)
    except ArithmeticError:
        raise UsageError(f"--sweep {key}: {text!r} is not a number") from None


def with_override(policy: Policy, key: str, text: str) -> Policy:
    """``policy`` with ``[block.]key`` set; a bare block key changes every block that sets it.

    Raises UsageError when the key applies nowhere or the value fails validation.
    """
    block_name, _, name = key.rpartition(".")
    value = _parse_value(name, text)
    if not block_name and name in _ACCOUNT_KEYS:
        if name == "max_exits_per_week" and value < 0:
            raise UsageError(f"--sweep {key}={text}: must be 0 or more")
        if name == "stop_loss_pct" and not 0 < value <= _HUNDRED:
            raise UsageError(f"--sweep {key}={text}: must be a percent in (0, 100]")
        changed = replace(policy, **{name: value})
        _check_stops(changed, f"--sweep {key}={text}")
        return changed
    if name not in RuleBlockConfig.model_fields:
        raise UsageError(f"--sweep: unknown key {key!r}")
    if block_name:
        try:
            targets = [Block(block_name)]
        except ValueError:
            raise UsageError(f"--sweep {key}: block must be weekly or daily") from None
    else:
        targets = [b for b, c in policy.blocks.items() if getattr(c, name) is not None]
    if not targets:
        raise UsageError(f"--sweep {key}: policy {policy.name!r} has no rule block setting {name}")
    blocks = dict(policy.blocks)
    for block in targets:
        current = blocks.get(block, RuleBlockConfig())
        data = current.model_dump(exclude_none=True) | {name: value}
        try:
            blocks[block] = RuleBlockConfig.model_validate(data)
        except ValidationError as exc:
            problem = exc.errors()[0]["msg"]
            raise UsageError(f"--sweep {key}={text}: {problem}") from None
    changed = replace(policy, blocks=blocks)
    _check_stops(changed, f"--sweep {key}={text}")
    return changed


def _check_stops(policy: Policy, where: str) -> None:
    """As at config load: a block's loss cut must fire before the account's stop."""
    if policy.stop_loss_pct is None:
        return
    for block, config in policy.blocks.items():
        cut = config.loss_cut_pct
        if config.stop_loss_pct is None and cut is not None and cut >= policy.stop_loss_pct:
            raise UsageError(
                f"{where}: {block.value}.loss_cut_pct ({cut}) must be "
                f"below stop_loss_pct ({policy.stop_loss_pct})"
            )
