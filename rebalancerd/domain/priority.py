"""Deterministic order in which candidates take weekly slots (SPEC §2).

loss_cut / stop_approach (largest loss first) → concentration (largest weight
first) → research → profit_take (largest gain first) → stale (oldest first) →
symbol. A position that fires rules of several classes ranks by its highest.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from rebalancerd.domain.model import Position, Rule, RuleHit

_CLASS: dict[Rule, int] = {
    Rule.LOSS_CUT: 0,
    Rule.STOP_APPROACH: 0,
    Rule.CONCENTRATION: 1,
    Rule.RESEARCH: 2,
    Rule.PROFIT_TAKE: 3,
    Rule.STALE: 4,
}

PriorityKey = tuple[int, Decimal, str]


def _metric(cls: int, p: Position, equity: Decimal, today: date) -> Decimal:
    """Within a class, smaller sorts first."""
    plpc = p.plpc if p.plpc is not None else Decimal(0)
    if cls == 0:
        return plpc  # most negative (largest loss) first
    if cls == 1:
        return -(abs(p.market_value) / equity) if equity > 0 else Decimal(0)
    if cls == 3:
        return -plpc  # largest gain first
    if cls == 4:
        age = (today - p.opened_at).days if p.opened_at is not None else 0
        return -Decimal(age)  # oldest first
    return Decimal(0)


def priority_key(p: Position, hits: Sequence[RuleHit], equity: Decimal, today: date) -> PriorityKey:
    cls = min((_CLASS[h.rule] for h in hits), default=len(_CLASS))
    return (cls, _metric(cls, p, equity, today), p.symbol)
