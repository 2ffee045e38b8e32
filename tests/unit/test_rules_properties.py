"""Invariants of the rule engine over random positions (hypothesis)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancerd.domain.model import Action, Block, Position, RuleBlock
from rebalancerd.domain.rules import concentration_sell_qty, evaluate_position

TODAY = date(2026, 11, 28)

money = st.decimals(min_value=D("0.01"), max_value=D("5000"), places=2)
pct = st.decimals(min_value=D("0.01"), max_value=D("0.99"), places=2)
qty = st.one_of(
    st.integers(min_value=-500, max_value=500).map(D),
    st.decimals(min_value=D("-50"), max_value=D("50"), places=3),
)


@st.composite
def positions(draw: st.DrawFn) -> Position:
    return Position(
        symbol=draw(st.sampled_from(["AMD", "ENPH", "SHOP", "TSLA"])),
        qty=draw(qty),
        avg_entry_price=draw(money),
        current_price=draw(st.one_of(st.none(), money)),
        opened_at=TODAY - timedelta(days=draw(st.integers(0, 120))),
        catalyst_date=draw(st.one_of(st.none(), st.dates(date(2026, 9, 1), date(2027, 1, 1)))),
        stop_price=draw(st.one_of(st.none(), money)),
    )


@st.composite
def blocks(draw: st.DrawFn) -> RuleBlock:
    maybe = lambda s: draw(st.one_of(st.none(), s))  # noqa: E731
    max_pct = maybe(pct)
    return RuleBlock(
        block=draw(st.sampled_from(list(Block))),
        profit_take_pct=maybe(pct),
        profit_take_fraction=draw(st.decimals(D("0.01"), D("1"), places=2)),
        loss_cut_pct=maybe(pct),
        stop_loss_pct=maybe(pct),
        stop_buffer_pct=maybe(pct),
        stale_days=maybe(st.integers(1, 60)),
        stale_move_pct=maybe(pct),
        max_position_pct=max_pct,
    )


@settings(max_examples=400, deadline=None)
@given(positions(), blocks(), st.decimals(D("1000"), D("1000000"), places=2))
def test_proposal_quantities_are_sane(p: Position, rb: RuleBlock, equity: D) -> None:
    proposal = evaluate_position(p, rb, equity, TODAY)
    if proposal is None:
        return
    assert proposal.hits, "a proposal always carries its reasons"
    assert D(0) <= proposal.qty <= abs(p.qty)
    if proposal.action is Action.EXIT:
        assert proposal.qty == abs(p.qty)
    if proposal.action is Action.TRIM:
        assert proposal.qty == proposal.qty.to_integral_value(), "trims sell whole shares"
        assert proposal.qty == max(h.qty for h in proposal.hits)
    assert len(set(proposal.reasons)) == len(proposal.reasons)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 10_000).map(D),
    money,
    st.decimals(D("10000"), D("10000000"), places=2),
    st.decimals(D("0.01"), D("0.5"), places=3),
)
def test_concentration_sells_the_smallest_sufficient_whole_number(
    shares: D, price: D, equity: D, target: D
) -> None:
    p = Position("AMD", shares, price, price)
    sold = concentration_sell_qty(p, equity, target)
    assert (shares - sold) * price <= target * equity or sold == shares
    if sold > 0:
        assert (shares - sold + 1) * price > target * equity


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 10_000).map(D),
    money,
    st.decimals(D("10000"), D("10000000"), places=2),
    st.decimals(D("0.01"), D("0.5"), places=3),
)
def test_covering_a_short_accounts_for_the_cash_it_spends(
    shares: D, price: D, equity: D, target: D
) -> None:
    """Equity = cash + longs: buying back n shares costs n·price of equity."""
    p = Position("CSH", -shares, price, price)
    covered = concentration_sell_qty(p, equity, target)
    after = equity - covered * price
    left = (shares - covered) * price
    assert covered == shares or left <= target * after
    if covered > 0 and covered < shares:
        one_less = covered - 1
        assert (shares - one_less) * price > target * (equity - one_less * price)
