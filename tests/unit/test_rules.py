"""Table-driven tests of the five rules at their exact edges (SPEC §2, §14)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from rebalancerd.domain.model import Action, Block, Position, ResearchAdvice, Rule, RuleBlock
from rebalancerd.domain.rules import (
    concentration,
    concentration_sell_qty,
    evaluate_position,
    loss_cut,
    profit_take,
    stale,
    stop_approach,
    trim_qty,
)

TODAY = date(2026, 11, 28)
EQUITY = D("100000")


def pos(**kw: object) -> Position:
    base: dict[str, object] = {
        "symbol": "AMD",
        "qty": D("100"),
        "avg_entry_price": D("100.00"),
        "current_price": D("100.00"),
        "opened_at": date(2026, 11, 20),
    }
    base.update(kw)
    return Position(**base)  # type: ignore[arg-type]


def block(**kw: object) -> RuleBlock:
    return RuleBlock(block=kw.pop("block", Block.WEEKLY), **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------ profit_take

PT = block(profit_take_pct=D("0.20"), profit_take_fraction=D("0.5"))


@pytest.mark.parametrize(
    ("price", "fires"),
    [(D("120.00"), True), (D("119.99"), False), (D("120.01"), True), (D("150"), True)],
)
def test_profit_take_edge(price: D, fires: bool) -> None:
    hit = profit_take(pos(current_price=price), PT, EQUITY, TODAY)
    assert (hit is not None) is fires
    if hit:
        assert hit.action is Action.TRIM
        assert hit.qty == D("50")
        assert hit.profit_level == "weekly:20"


def test_profit_take_short_inverted() -> None:
    short = pos(qty=D("-100"), current_price=D("80.00"))
    hit = profit_take(short, PT, EQUITY, TODAY)
    assert hit is not None and hit.qty == D("50")
    assert profit_take(pos(qty=D("-100"), current_price=D("80.01")), PT, EQUITY, TODAY) is None
    assert profit_take(pos(qty=D("-100"), current_price=D("120")), PT, EQUITY, TODAY) is None


def test_profit_take_once_per_level() -> None:
    taken = pos(current_price=D("130"), profit_levels_taken=frozenset({"weekly:20"}))
    assert profit_take(taken, PT, EQUITY, TODAY) is None
    # another block's level is its own
    other = pos(current_price=D("130"), profit_levels_taken=frozenset({"daily:30"}))
    assert profit_take(other, PT, EQUITY, TODAY) is not None


def test_profit_take_full_fraction_is_exit() -> None:
    rb = block(profit_take_pct=D("0.20"), profit_take_fraction=D("1"))
    hit = profit_take(pos(current_price=D("121"), qty=D("10.5")), rb, EQUITY, TODAY)
    assert hit is not None and hit.action is Action.EXIT and hit.qty == D("10.5")


@pytest.mark.parametrize(
    ("qty", "fraction", "expected"),
    [
        (D("100"), D("0.5"), D("50")),
        (D("101"), D("0.5"), D("50")),
        (D("10.5"), D("0.5"), D("5")),
        (D("1"), D("0.5"), D("0")),
        (D("-7"), D("0.5"), D("3")),
    ],
)
def test_trim_qty_floors_whole_shares(qty: D, fraction: D, expected: D) -> None:
    assert trim_qty(qty, fraction) == expected


def test_trim_rounding_to_zero_is_too_small() -> None:
    proposal = evaluate_position(pos(qty=D("1"), current_price=D("130")), PT, EQUITY, TODAY)
    assert proposal is not None and proposal.is_too_small


# --------------------------------------------------------------------- loss_cut

LC = block(loss_cut_pct=D("0.12"), block=Block.DAILY)


@pytest.mark.parametrize(
    ("price", "fires"), [(D("88.00"), True), (D("88.01"), False), (D("87.99"), True)]
)
def test_loss_cut_edge(price: D, fires: bool) -> None:
    hit = loss_cut(pos(current_price=price), LC, EQUITY, TODAY)
    assert (hit is not None) is fires
    if hit:
        assert hit.action is Action.EXIT and hit.qty == D("100")


def test_loss_cut_short() -> None:
    assert loss_cut(pos(qty=D("-10"), current_price=D("112")), LC, EQUITY, TODAY) is not None
    assert loss_cut(pos(qty=D("-10"), current_price=D("111.99")), LC, EQUITY, TODAY) is None


def test_missing_price_fires_no_price_rule() -> None:
    rb = block(
        profit_take_pct=D("0.2"),
        loss_cut_pct=D("0.1"),
        stop_loss_pct=D("0.15"),
        stop_buffer_pct=D("0.05"),
        max_position_pct=D("0.01"),
    )
    assert evaluate_position(pos(current_price=None), rb, EQUITY, TODAY) is None


# ----------------------------------------------------------------- stop_approach

SA = block(stop_loss_pct=D("0.15"), stop_buffer_pct=D("0.05"))


@pytest.mark.parametrize(
    ("price", "fires"),
    # entry 100 → stop 85.00 → trigger 85 × 1.05 = 89.25
    [(D("89.25"), True), (D("89.26"), False), (D("89.24"), True)],
)
def test_stop_approach_from_stop_loss_pct(price: D, fires: bool) -> None:
    assert (stop_approach(pos(current_price=price), SA, EQUITY, TODAY) is not None) is fires


@pytest.mark.parametrize(
    ("price", "fires"),
    # broker stop 90.00 → trigger 94.50
    [(D("94.50"), True), (D("94.51"), False), (D("94.49"), True)],
)
def test_stop_approach_uses_broker_stop(price: D, fires: bool) -> None:
    p = pos(current_price=price, stop_price=D("90.00"))
    assert (stop_approach(p, SA, EQUITY, TODAY) is not None) is fires


def test_stop_approach_short() -> None:
    # short entry 100 → stop 115 → trigger 115 × 0.95 = 109.25
    assert stop_approach(pos(qty=D("-5"), current_price=D("109.25")), SA, EQUITY, TODAY)
    assert stop_approach(pos(qty=D("-5"), current_price=D("109.24")), SA, EQUITY, TODAY) is None


def test_stop_approach_needs_buffer_and_stop() -> None:
    assert (
        stop_approach(pos(current_price=D("50")), block(stop_buffer_pct=D("0.05")), EQUITY, TODAY)
        is None
    )
    assert (
        stop_approach(pos(current_price=D("50")), block(stop_loss_pct=D("0.15")), EQUITY, TODAY)
        is None
    )


# ------------------------------------------------------------------------ stale

ST = block(stale_days=21, stale_move_pct=D("0.05"))


@pytest.mark.parametrize(
    ("opened", "price", "fires"),
    [
        (date(2026, 11, 7), D("104.99"), False),  # 21 days: not > 21
        (date(2026, 11, 6), D("104.99"), True),  # 22 days, moved 4.99%
        (date(2026, 11, 6), D("105.00"), False),  # moved exactly 5%: not < 5%
        (date(2026, 11, 6), D("95.01"), True),
        (date(2026, 11, 6), D("95.00"), False),
    ],
)
def test_stale_edges(opened: date, price: D, fires: bool) -> None:
    p = pos(opened_at=opened, current_price=price)
    assert (stale(p, ST, EQUITY, TODAY) is not None) is fires


def test_stale_by_passed_catalyst() -> None:
    p = pos(opened_at=date(2026, 11, 6), current_price=D("112"), catalyst_date=date(2026, 11, 27))
    hit = stale(p, ST, EQUITY, TODAY)
    assert hit is not None and "catalyst passed" in hit.detail and "held 22 days" in hit.detail
    same_day = pos(opened_at=date(2026, 11, 6), current_price=D("112"), catalyst_date=TODAY)
    assert stale(same_day, ST, EQUITY, TODAY) is None


def test_stale_without_move_pct_needs_catalyst() -> None:
    rb = block(stale_days=14)
    old = pos(opened_at=date(2026, 10, 1), current_price=D("100"))
    assert stale(old, rb, EQUITY, TODAY) is None
    assert stale(
        pos(opened_at=date(2026, 10, 1), catalyst_date=date(2026, 11, 1)), rb, EQUITY, TODAY
    )


def test_stale_unknown_age_does_not_fire() -> None:
    assert stale(pos(opened_at=None), ST, EQUITY, TODAY) is None


# ---------------------------------------------------------------- concentration

CO = block(max_position_pct=D("0.15"))


@pytest.mark.parametrize(("qty", "fires"), [(D("150"), False), (D("151"), True), (D("149"), False)])
def test_concentration_edge(qty: D, fires: bool) -> None:
    # price 100, equity 100000: 150 shares = exactly 15%
    assert (concentration(pos(qty=qty), CO, EQUITY, TODAY) is not None) is fires


def test_concentration_sells_smallest_whole_number() -> None:
    p = pos(qty=D("180"))  # 18% → 15% needs selling 30 shares
    hit = concentration(p, CO, EQUITY, TODAY)
    assert hit is not None and hit.action is Action.TRIM and hit.qty == D("30")
    assert concentration_sell_qty(pos(qty=D("150.5")), EQUITY, D("0.15")) == D("1")


def test_concentration_target_below_max() -> None:
    rb = block(max_position_pct=D("0.15"), concentration_target_pct=D("0.10"))
    hit = concentration(pos(qty=D("180")), rb, EQUITY, TODAY)
    assert hit is not None and hit.qty == D("80")


def test_concentration_short_uses_absolute_value_and_the_cash_the_cover_spends() -> None:
    # 18% short; covering n spends n·100 of equity: (180 − n)·100 ≤ 0.15·(100000 − 100n)
    # → n ≥ 35.3, so 36 (30 would leave 15,000 of 97,000 = 15.5%).
    hit = concentration(pos(qty=D("-180")), CO, EQUITY, TODAY)
    assert hit is not None and hit.qty == D("36")


def test_zero_quantity_is_not_evaluated() -> None:
    rb = block(stale_days=1, stale_move_pct=D("0.5"), max_position_pct=D("0.0001"))
    assert evaluate_position(pos(qty=D("0")), rb, EQUITY, TODAY) is None


# -------------------------------------------------------------- one decision


def test_exit_beats_trim_and_all_reasons_kept() -> None:
    rb = block(
        profit_take_pct=D("0.20"),
        max_position_pct=D("0.15"),
        stale_days=21,
        stale_move_pct=D("0.5"),
    )
    p = pos(qty=D("180"), current_price=D("125"), opened_at=date(2026, 10, 1))
    proposal = evaluate_position(p, rb, EQUITY, TODAY)
    assert proposal is not None
    assert proposal.action is Action.EXIT and proposal.qty == D("180")
    assert set(proposal.reasons) == {"concentration", "profit_take", "stale"}


def test_larger_trim_wins() -> None:
    rb = block(
        profit_take_pct=D("0.20"), profit_take_fraction=D("0.25"), max_position_pct=D("0.15")
    )
    # 200 sh @ 125 = 25000 of equity 100000 → 25%: concentration sells 80; profit-take 50
    p = pos(qty=D("200"), current_price=D("125"))
    proposal = evaluate_position(p, rb, EQUITY, TODAY)
    assert proposal is not None and proposal.action is Action.TRIM and proposal.qty == D("80")
    assert proposal.reasons == ["concentration", "profit_take"]


# ----------------------------------------------------------------- research


def advice(action: Action, fraction: D | None = None) -> ResearchAdvice:
    return ResearchAdvice(symbol="AMD", action=action, fraction=fraction, reason="says so")


def test_research_exit_and_trim() -> None:
    rb = block()
    exit_ = evaluate_position(pos(), rb, EQUITY, TODAY, advice(Action.EXIT))
    assert exit_ is not None and exit_.action is Action.EXIT and exit_.reasons == ["research"]
    trim = evaluate_position(pos(), rb, EQUITY, TODAY, advice(Action.TRIM, D("0.5")))
    assert trim is not None and trim.action is Action.TRIM and trim.qty == D("50")


def test_research_hold_vetoes_stale_and_profit_take_only() -> None:
    rb = block(
        profit_take_pct=D("0.20"),
        stale_days=5,
        stale_move_pct=D("0.9"),
        stop_loss_pct=D("0.15"),
        stop_buffer_pct=D("0.40"),
    )
    p = pos(current_price=D("125"), opened_at=date(2026, 10, 1))
    vetoed = evaluate_position(p, rb, EQUITY, TODAY, advice(Action.HOLD))
    assert vetoed is not None and vetoed.action is Action.HOLD
    assert {h.rule for h in vetoed.vetoed} == {Rule.PROFIT_TAKE, Rule.STALE}
    # stop_approach (stop 85, buffer 40% → trigger 119) is never vetoed
    p2 = pos(current_price=D("118"), opened_at=date(2026, 10, 1))
    kept = evaluate_position(p2, rb, EQUITY, TODAY, advice(Action.HOLD))
    assert kept is not None and kept.action is Action.EXIT
    assert kept.reasons == ["stop_approach"]


def test_research_hold_never_vetoes_daily_guard() -> None:
    rb = block(block=Block.DAILY, profit_take_pct=D("0.3"))
    proposal = evaluate_position(
        pos(current_price=D("131")), rb, EQUITY, TODAY, advice(Action.HOLD)
    )
    assert proposal is not None and proposal.action is Action.TRIM


def test_veto_can_be_switched_off() -> None:
    rb = block(profit_take_pct=D("0.2"))
    proposal = evaluate_position(
        pos(current_price=D("130")), rb, EQUITY, TODAY, advice(Action.HOLD), research_can_veto=False
    )
    assert proposal is not None and proposal.action is Action.TRIM
