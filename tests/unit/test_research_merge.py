"""The merge table: which rule fires × what the research says → the one decision.

Weekly block with every rule armed at thresholds the position below crosses
one rule at a time. EXIT beats TRIM; among trims the larger wins; a research
HOLD vetoes only stale and profit_take (SPEC §2, §6, §14).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from rebalancerd.domain.model import Action, Block, Position, ResearchAdvice, RuleBlock
from rebalancerd.domain.rules import evaluate_position

TODAY = date(2026, 11, 28)
EQUITY = D("100000")
RB = RuleBlock(
    block=Block.WEEKLY,
    profit_take_pct=D("0.20"),
    profit_take_fraction=D("0.5"),
    loss_cut_pct=D("0.12"),
    stale_days=21,
    stale_move_pct=D("0.05"),
    max_position_pct=D("0.15"),
    stop_buffer_pct=D("0.05"),
)

#: Positions that fire exactly one rule (100 shares, entry 100).
FIRES = {
    "none": {"current_price": D("102")},
    "profit_take": {"current_price": D("125")},
    "loss_cut": {"current_price": D("87")},
    "stop_approach": {"current_price": D("95"), "stop_price": D("91")},
    "stale": {"current_price": D("101"), "opened_at": date(2026, 10, 1)},
    "concentration": {"current_price": D("104"), "qty": D("200")},
}

RESEARCH: dict[str, tuple[Action, D | None] | None] = {
    "-": None,
    "HOLD": (Action.HOLD, None),
    "EXIT": (Action.EXIT, None),
    "TRIM 25%": (Action.TRIM, D("0.25")),
    "BUY": (Action.BUY, None),
}

# (rule, research) → (action, reasons) or None for "no decision".
EXPECTED: dict[tuple[str, str], tuple[Action, list[str]] | None] = {
    ("none", "-"): None,
    ("none", "HOLD"): None,
    ("none", "EXIT"): (Action.EXIT, ["research"]),
    ("none", "TRIM 25%"): (Action.TRIM, ["research"]),
    ("none", "BUY"): None,
    ("profit_take", "-"): (Action.TRIM, ["profit_take"]),
    ("profit_take", "HOLD"): (Action.HOLD, []),
    ("profit_take", "EXIT"): (Action.EXIT, ["profit_take", "research"]),
    ("profit_take", "TRIM 25%"): (Action.TRIM, ["profit_take", "research"]),
    ("profit_take", "BUY"): (Action.TRIM, ["profit_take"]),
    ("loss_cut", "-"): (Action.EXIT, ["loss_cut"]),
    ("loss_cut", "HOLD"): (Action.EXIT, ["loss_cut"]),
    ("loss_cut", "EXIT"): (Action.EXIT, ["loss_cut", "research"]),
    ("loss_cut", "TRIM 25%"): (Action.EXIT, ["loss_cut", "research"]),
    ("stop_approach", "-"): (Action.EXIT, ["stop_approach"]),
    ("stop_approach", "HOLD"): (Action.EXIT, ["stop_approach"]),
    ("stop_approach", "TRIM 25%"): (Action.EXIT, ["stop_approach", "research"]),
    ("stale", "-"): (Action.EXIT, ["stale"]),
    ("stale", "HOLD"): (Action.HOLD, []),
    ("stale", "TRIM 25%"): (Action.EXIT, ["stale", "research"]),
    ("concentration", "-"): (Action.TRIM, ["concentration"]),
    ("concentration", "HOLD"): (Action.TRIM, ["concentration"]),
    ("concentration", "EXIT"): (Action.EXIT, ["concentration", "research"]),
}


@pytest.mark.parametrize(("rule", "says"), sorted(EXPECTED))
def test_merge_table(rule: str, says: str) -> None:
    base: dict[str, object] = {
        "symbol": "AMD",
        "qty": D("100"),
        "avg_entry_price": D("100"),
        "current_price": None,
        "opened_at": date(2026, 11, 20),
        "stop_price": D("80"),
    }
    p = Position(**{**base, **FIRES[rule]})  # type: ignore[arg-type]
    research = RESEARCH[says]
    advice = None if research is None else ResearchAdvice("AMD", research[0], research[1], "why")
    proposal = evaluate_position(p, RB, EQUITY, TODAY, advice)
    expected = EXPECTED[(rule, says)]
    if expected is None:
        assert proposal is None
        return
    assert proposal is not None
    assert (proposal.action, proposal.reasons) == expected
    if says == "HOLD" and expected[0] is Action.HOLD:
        assert [h.rule.value for h in proposal.vetoed] == [rule]
