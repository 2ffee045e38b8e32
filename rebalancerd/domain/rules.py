"""The five exit rules of SPEC §2 and how their hits become one proposal.

Each rule is a pure function of a position, its rule block, the portfolio's
equity and the evaluation date; it returns a :class:`RuleHit` or ``None``.
:func:`evaluate_position` runs them all, applies a research HOLD veto, and folds
the hits into one :class:`Proposal` (EXIT beats TRIM; of two TRIMs the larger
quantity wins; every reason is kept).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from rebalancerd.domain.model import (
    Action,
    Block,
    Position,
    Proposal,
    ResearchAdvice,
    Rule,
    RuleBlock,
    RuleHit,
)
from rebalancerd.domain.priority import priority_key

_ONE = Decimal(1)
_HUNDRED = Decimal(100)


def _pct(value: Decimal) -> str:
    """Format a fraction as a signed percent for reason text: +12.0%."""
    return f"{value * _HUNDRED:+.1f}%"


def age_days(position: Position, today: date) -> int | None:
    """Whole calendar days from the opening date to ``today`` (both market-local)."""
    if position.opened_at is None:
        return None
    return (today - position.opened_at).days


def trim_qty(qty: Decimal, fraction: Decimal) -> Decimal:
    """Whole shares to sell for a trim: floor(|qty| × fraction) (SPEC §14)."""
    return (abs(qty) * fraction).to_integral_value(rounding=ROUND_FLOOR)


def profit_take(p: Position, rb: RuleBlock, equity: Decimal, today: date) -> RuleHit | None:
    level = rb.profit_level
    plpc = p.plpc
    if rb.profit_take_pct is None or plpc is None or level is None:
        return None
    if plpc < rb.profit_take_pct or level in p.profit_levels_taken:
        return None
    detail = f"up {_pct(plpc)} ≥ {_pct(rb.profit_take_pct)} profit-take level"
    if rb.profit_take_fraction >= _ONE:
        return RuleHit(Rule.PROFIT_TAKE, Action.EXIT, p.abs_qty, detail, level)
    qty = trim_qty(p.qty, rb.profit_take_fraction)
    detail += f", trim {rb.profit_take_fraction * _HUNDRED:.0f}%"
    return RuleHit(Rule.PROFIT_TAKE, Action.TRIM, qty, detail, level)


def loss_cut(p: Position, rb: RuleBlock, equity: Decimal, today: date) -> RuleHit | None:
    plpc = p.plpc
    if rb.loss_cut_pct is None or plpc is None or plpc > -rb.loss_cut_pct:
        return None
    detail = f"down {_pct(plpc)} ≤ -{rb.loss_cut_pct * _HUNDRED:.1f}% loss cut"
    return RuleHit(Rule.LOSS_CUT, Action.EXIT, p.abs_qty, detail)


def effective_stop_price(p: Position, rb: RuleBlock) -> Decimal | None:
    """The broker's open stop if there is one, else entry × (1 ∓ stop_loss_pct)."""
    if p.stop_price is not None:
        return p.stop_price
    if rb.stop_loss_pct is None:
        return None
    sign = _ONE if p.is_short else -_ONE
    return p.avg_entry_price * (_ONE + sign * rb.stop_loss_pct)


def stop_approach(p: Position, rb: RuleBlock, equity: Decimal, today: date) -> RuleHit | None:
    stop = effective_stop_price(p, rb)
    if rb.stop_buffer_pct is None or stop is None or p.current_price is None:
        return None
    if p.is_short:
        trigger = stop * (_ONE - rb.stop_buffer_pct)
        fired = p.current_price >= trigger
    else:
        trigger = stop * (_ONE + rb.stop_buffer_pct)
        fired = p.current_price <= trigger
    if not fired:
        return None
    detail = (
        f"price {p.current_price} within {rb.stop_buffer_pct * _HUNDRED:.1f}% "
        f"of stop {stop.quantize(Decimal('0.01'))}"
    )
    return RuleHit(Rule.STOP_APPROACH, Action.EXIT, p.abs_qty, detail)


def stale(p: Position, rb: RuleBlock, equity: Decimal, today: date) -> RuleHit | None:
    age = age_days(p, today)
    if rb.stale_days is None or age is None or age <= rb.stale_days:
        return None
    plpc = p.plpc
    flat = rb.stale_move_pct is not None and plpc is not None and abs(plpc) < rb.stale_move_pct
    catalyst_passed = p.catalyst_date is not None and p.catalyst_date < today
    if not (flat or catalyst_passed):
        return None
    parts = [f"held {age} days"]
    if catalyst_passed:
        parts.append("catalyst passed")
    if plpc is not None:
        parts.append(f"{_pct(plpc)}")
    if flat and rb.stale_move_pct is not None:
        parts.append(f"moved less than {rb.stale_move_pct * _HUNDRED:.1f}%")
    return RuleHit(Rule.STALE, Action.EXIT, p.abs_qty, ", ".join(parts))


def concentration_sell_qty(p: Position, equity: Decimal, target: Decimal) -> Decimal:
    """Smallest whole number of shares whose sale brings the weight to ``target`` or below.

    Selling long shares turns them into cash, so equity is unchanged by the trim.
    Covering a short spends cash, and a short is not part of equity (SPEC §14), so
    equity falls by what the cover costs: (|q| − n)·p ≤ t·(E − n·p) gives
    n ≥ (|q|·p − t·E) / (p·(1 − t)).
    """
    price = p.valuation_price
    if p.is_short:
        if target >= 1:
            return Decimal(0)
        excess = (p.abs_qty * price - target * equity) / (price * (1 - target))
    else:
        excess = p.abs_qty - target * equity / price
    qty = excess.to_integral_value(rounding=ROUND_CEILING)
    return min(max(qty, Decimal(0)), p.abs_qty)


def weight(p: Position, equity: Decimal) -> Decimal | None:
    if equity <= 0:
        return None
    return abs(p.market_value) / equity


def concentration(p: Position, rb: RuleBlock, equity: Decimal, today: date) -> RuleHit | None:
    w = weight(p, equity)
    if rb.max_position_pct is None or p.current_price is None:
        return None
    if w is None or w <= rb.max_position_pct:
        return None
    target = rb.concentration_target_pct or rb.max_position_pct
    qty = concentration_sell_qty(p, equity, target)
    detail = (
        f"weight {w * _HUNDRED:.1f}% > {rb.max_position_pct * _HUNDRED:.1f}% of equity, "
        f"trim to {target * _HUNDRED:.1f}%"
    )
    action = Action.EXIT if qty >= p.abs_qty else Action.TRIM
    return RuleHit(Rule.CONCENTRATION, action, qty, detail)


def research(p: Position, advice: ResearchAdvice | None) -> RuleHit | None:
    """The week's report's EXIT or TRIM N% for this symbol, as a rule hit."""
    if advice is None or advice.action not in (Action.EXIT, Action.TRIM):
        return None
    reason = f"research: {advice.reason}" if advice.reason else "research recommends exit"
    if advice.action is Action.EXIT or (advice.fraction or _ONE) >= _ONE:
        return RuleHit(Rule.RESEARCH, Action.EXIT, p.abs_qty, reason)
    fraction = advice.fraction or _ONE
    return RuleHit(Rule.RESEARCH, Action.TRIM, trim_qty(p.qty, fraction), reason)


RuleFn = Callable[[Position, RuleBlock, Decimal, date], RuleHit | None]

#: Order matters only for the reasons list: risk rules first, then the rest.
RULES: tuple[RuleFn, ...] = (loss_cut, stop_approach, concentration, profit_take, stale)

#: Rules a research HOLD may veto (SPEC §2); never loss_cut, stop_approach or daily guards.
VETOABLE: frozenset[Rule] = frozenset({Rule.STALE, Rule.PROFIT_TAKE})


def combine(hits: Sequence[RuleHit]) -> tuple[Action, Decimal]:
    """One action and quantity from several hits: EXIT beats TRIM; larger TRIM wins."""
    exits = [h for h in hits if h.action is Action.EXIT]
    if exits:
        return Action.EXIT, max(h.qty for h in exits)
    return Action.TRIM, max(h.qty for h in hits)


def position_inputs(p: Position, rb: RuleBlock, equity: Decimal, today: date) -> dict[str, str]:
    """The numbers a decision was made on, kept with it for the audit trail."""
    inputs = {
        "qty": str(p.qty),
        "avg_entry_price": str(p.avg_entry_price),
        "current_price": "" if p.current_price is None else str(p.current_price),
        "equity": str(equity),
        "block": rb.block.value,
    }
    plpc, w, age = p.plpc, weight(p, equity), age_days(p, today)
    if plpc is not None:
        inputs["plpc"] = f"{plpc:.6f}"
    if w is not None:
        inputs["weight"] = f"{w:.6f}"
    if age is not None:
        inputs["age_days"] = str(age)
    if p.catalyst_date is not None:
        inputs["catalyst_date"] = p.catalyst_date.isoformat()
    if p.stop_price is not None:
        inputs["stop_price"] = str(p.stop_price)
    for name in ("profit_take_pct", "loss_cut_pct", "stale_days", "max_position_pct"):
        value = getattr(rb, name)
        if value is not None:
            inputs[name] = str(value)
    return inputs


def evaluate_position(
    p: Position,
    rb: RuleBlock,
    equity: Decimal,
    today: date,
    advice: ResearchAdvice | None = None,
    *,
    research_can_veto: bool = True,
) -> Proposal | None:
    """Run every rule of ``rb`` (and the research advice) on one position.

    Returns ``None`` when nothing fires. A proposal whose every hit was vetoed
    by a research HOLD comes back with ``action`` HOLD and the vetoed hits kept,
    so the veto is recorded. Zero-quantity positions are never evaluated.
    """
    if p.qty == 0:
        return None
    hits = [hit for rule in RULES if (hit := rule(p, rb, equity, today)) is not None]
    research_hit = research(p, advice)
    if research_hit is not None:
        hits.append(research_hit)
    vetoed: list[RuleHit] = []
    if advice is not None and advice.action is Action.HOLD and research_can_veto:
        vetoed = [h for h in hits if h.rule in VETOABLE and rb.block is Block.WEEKLY]
        hits = [h for h in hits if h not in vetoed]
    inputs = position_inputs(p, rb, equity, today)
    if advice is not None and advice.report_id is not None:
        inputs["report_id"] = str(advice.report_id)
    if not hits:
        if not vetoed:
            return None
        key = priority_key(p, vetoed, equity, today)
        return Proposal(p.symbol, Action.HOLD, Decimal(0), (), inputs, key, tuple(vetoed))
    action, qty = combine(hits)
    levels = [h.profit_level for h in hits if h.profit_level is not None]
    return Proposal(
        symbol=p.symbol,
        action=action,
        qty=qty,
        hits=tuple(hits),
        inputs=inputs,
        priority=priority_key(p, hits, equity, today),
        vetoed=tuple(vetoed),
        profit_level=levels[0] if levels else None,
    )
