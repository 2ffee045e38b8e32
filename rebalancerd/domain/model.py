"""The decision model: enums and value objects shared by rules, caps and services.

Pure data: stdlib and ``decimal`` only. Money and quantities are ``Decimal``;
percentages are stored as fractions (``Decimal("0.20")`` for 20%) once they
leave the config, so rule code never divides by 100 twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum


class Action(StrEnum):
    HOLD = "HOLD"
    EXIT = "EXIT"
    TRIM = "TRIM"
    BUY = "BUY"


class Source(StrEnum):
    WEEKLY_REVIEW = "weekly_review"
    DAILY_GUARD = "daily_guard"
    RESEARCH = "research"
    MANUAL = "manual"


class Rule(StrEnum):
    """Reason names as fixed by SPEC §13 (``reasons`` in the JSON output)."""

    PROFIT_TAKE = "profit_take"
    LOSS_CUT = "loss_cut"
    STOP_APPROACH = "stop_approach"
    STALE = "stale"
    CONCENTRATION = "concentration"
    RESEARCH = "research"


class Status(StrEnum):
    PROPOSED = "proposed"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    SUBMITTED = "submitted"
    FILLED = "filled"
    PARTIALLY_FILLED = "partially_filled"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    SKIPPED = "skipped"
    DRY_RUN = "dry_run"


class SkipReason(StrEnum):
    WEEKLY_CAP_REACHED = "weekly_cap_reached"
    DISABLED = "disabled"
    VETOED = "vetoed"
    OPEN_DECISION = "open_decision"
    TOO_SMALL = "too_small"
    CONFLICT = "conflict"
    NO_POSITION = "no_position"
    EXITED_THIS_WEEK = "exited_this_week"
    ALREADY_HELD = "already_held"
    INSUFFICIENT_CASH = "insufficient_cash"


class Mode(StrEnum):
    OFF = "off"
    WEEKLY = "weekly"
    DAILY = "daily"
    HYBRID = "hybrid"

    @property
    def has_weekly_review(self) -> bool:
        return self in (Mode.WEEKLY, Mode.HYBRID)

    @property
    def has_daily_guard(self) -> bool:
        return self in (Mode.DAILY, Mode.HYBRID)


class Block(StrEnum):
    """A rule block of an account: the Saturday review's or the 16:30 guard's."""

    WEEKLY = "weekly"
    DAILY = "daily"

    @property
    def source(self) -> Source:
        return Source.WEEKLY_REVIEW if self is Block.WEEKLY else Source.DAILY_GUARD


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    MARKET = "market"
    STOP = "stop"
    LIMIT = "limit"
    STOP_LIMIT = "stop_limit"


class OrderStatus(StrEnum):
    """Broker order states (Alpaca's names)."""

    NEW = "new"
    ACCEPTED = "accepted"
    PENDING_NEW = "pending_new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    DONE_FOR_DAY = "done_for_day"

    @property
    def is_final(self) -> bool:
        return self in (
            OrderStatus.FILLED,
            OrderStatus.CANCELED,
            OrderStatus.REJECTED,
            OrderStatus.EXPIRED,
        )


@dataclass(frozen=True, slots=True)
class RuleBlock:
    """Thresholds of one rule block, percentages already as fractions.

    ``None`` switches a rule off (SPEC §13: an absent threshold is off).
    """

    block: Block
    profit_take_pct: Decimal | None = None
    profit_take_fraction: Decimal = Decimal("0.5")
    loss_cut_pct: Decimal | None = None
    stop_loss_pct: Decimal | None = None
    stop_buffer_pct: Decimal | None = None
    stale_days: int | None = None
    stale_move_pct: Decimal | None = None
    max_position_pct: Decimal | None = None
    concentration_target_pct: Decimal | None = None

    @property
    def profit_level(self) -> str | None:
        """Key of this block's profit-take level, remembered once taken."""
        if self.profit_take_pct is None:
            return None
        return f"{self.block.value}:{(self.profit_take_pct * 100).normalize():f}"


@dataclass(frozen=True, slots=True)
class Position:
    """A position as the rules see it: broker state plus the daemon's memory."""

    symbol: str
    qty: Decimal
    avg_entry_price: Decimal
    current_price: Decimal | None
    opened_at: date | None = None
    catalyst: str | None = None
    catalyst_date: date | None = None
    stop_price: Decimal | None = None
    profit_levels_taken: frozenset[str] = frozenset()

    @property
    def is_short(self) -> bool:
        return self.qty < 0

    @property
    def abs_qty(self) -> Decimal:
        return abs(self.qty)

    @property
    def valuation_price(self) -> Decimal:
        """Price used for weights; the entry price when the market price is missing."""
        return self.current_price if self.current_price is not None else self.avg_entry_price

    @property
    def market_value(self) -> Decimal:
        return self.qty * self.valuation_price

    @property
    def plpc(self) -> Decimal | None:
        """P&L as a fraction of entry, inverted for shorts; None without a price."""
        if self.current_price is None or self.avg_entry_price <= 0:
            return None
        change = (self.current_price - self.avg_entry_price) / self.avg_entry_price
        return -change if self.is_short else change


@dataclass(frozen=True, slots=True)
class ResearchAdvice:
    """What the week's report says about one symbol (SPEC §6)."""

    symbol: str
    action: Action
    fraction: Decimal | None = None
    reason: str = ""
    report_id: int | None = None
    catalyst_date: date | None = None
    weight: Decimal | None = None


@dataclass(frozen=True, slots=True)
class RuleHit:
    """One rule that fired on a position, with the numbers that made it fire."""

    rule: Rule
    action: Action
    qty: Decimal
    detail: str
    profit_level: str | None = None


@dataclass(frozen=True, slots=True)
class Proposal:
    """The one decision the rules make for one position (SPEC §2)."""

    symbol: str
    action: Action
    qty: Decimal
    hits: tuple[RuleHit, ...]
    inputs: Mapping[str, str]
    priority: tuple[int, Decimal, str]
    vetoed: tuple[RuleHit, ...] = ()
    profit_level: str | None = None

    @property
    def reasons(self) -> list[str]:
        return [hit.rule.value for hit in self.hits]

    @property
    def is_too_small(self) -> bool:
        return self.action is not Action.HOLD and self.qty <= 0

    @property
    def summary(self) -> str:
        return "; ".join(hit.detail for hit in self.hits)


@dataclass(frozen=True, slots=True)
class Portfolio:
    """A snapshot of an account: cash and positions, equity per SPEC §14."""

    cash: Decimal
    positions: tuple[Position, ...] = field(default_factory=tuple)

    @property
    def equity(self) -> Decimal:
        """Cash plus the market value of the long positions (SPEC §14)."""
        longs = sum((p.market_value for p in self.positions if not p.is_short), Decimal(0))
        return self.cash + longs
