"""Replays daily bars through the rule engine that trades, one policy at a time.

Semantics (README "Backtest"): each trading day, in this order,

1. *open* — exits decided earlier and due today fill at the open (whole shares);
2. *intraday* — protective stops (``stop_loss_pct``, entry × (1 − pct) to the
   cent, as the executor places them) fill when the low reaches them, at the
   worse of the stop and the open on a gap;
3. *close* — the day's entries buy whole shares at the close, ``weight`` of the
   close's equity, capped by the policy's ``max_position_pct`` and by the cash;
4. *close* — daily guards run on the close for positions entered before today,
   their exits due at the next open; a weekly review runs on the last close
   before its scheduled time, with that day's date for ages, its exits due at
   the next scheduled execution. Candidates take weekly slots in priority
   order (:mod:`rebalancerd.domain.priority`) exactly as the live services do.

Rules are evaluated by :func:`rebalancerd.domain.rules.evaluate_position` on
:class:`Position` records; only the bookkeeping around them lives here.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_FLOOR, Decimal

import numpy as np

from rebalancerd.backtest.data import Bars, Entry
from rebalancerd.backtest.policy import Policy
from rebalancerd.backtest.records import (
    ENTRY,
    STOP_LOSS,
    Fill,
    Holding,
    Pending,
    RunResult,
    Skip,
    dec,
)
from rebalancerd.domain.caps import takes_slot
from rebalancerd.domain.model import (
    Action,
    Block,
    Position,
    Proposal,
    RuleBlock,
    SkipReason,
    Source,
)
from rebalancerd.domain.rules import evaluate_position
from rebalancerd.domain.timing import week_start

_CENT = Decimal("0.01")
_ONE = Decimal(1)
_CLOSE = time(16, 0)
_PROGRESS_EVERY = 64


@dataclass(frozen=True)
class Review:
    data_day: int  # index of the close the review reads
    on: date  # the review's own date (ages, catalysts)
    due: int  # index of the execution day


def review_days(dates: tuple[date, ...], policy: Policy) -> dict[int, Review]:
    """Every weekly review inside the data, keyed by the close it reads."""
    if not dates:
        return {}
    sched = policy.schedule
    reviews: dict[int, Review] = {}
    monday = week_start(dates[0])
    while monday <= dates[-1]:
        at = datetime.combine(monday + timedelta(days=sched.review_weekday), sched.review_at)
        after_close = sched.review_at >= _CLOSE
        data_day = (bisect_right if after_close else bisect_left)(dates, at.date()) - 1
        exec_on = datetime.combine(
            monday + timedelta(days=sched.execution_weekday), sched.execution_at
        )
        if exec_on <= at:
            exec_on += timedelta(days=7)
        due = bisect_left(dates, exec_on.date())
        if 0 <= data_day < due < len(dates):
            reviews[data_day] = Review(data_day, at.date(), due)
        monday += timedelta(days=7)
    return reviews


class Simulation:
    """One policy over one data set; :meth:`run` returns the fills and the equity curve."""

    def __init__(
        self,
        bars: Bars,
        entries: list[Entry],
        policy: Policy,
        *,
        cash: Decimal,
        default_weight: Decimal,
    ):
        self.bars, self.policy = bars, policy
        self.cash, self.initial_cash = cash, cash
        self.default_weight = default_weight
        self.entries: dict[int, list[Entry]] = defaultdict(list)
        index, columns = bars.day_index, bars.column
        self.columns = columns
        for e in entries:
            self.entries[index[e.day]].append(e)
        self.daily = policy.rule_block(Block.DAILY)
        self.weekly = policy.rule_block(Block.WEEKLY)
        self.reviews = review_days(bars.dates, policy) if self.weekly is not None else {}
        self.max_entry = policy.max_entry_fraction
        self.stop_fraction = policy.stop_fraction
        self.holdings: dict[str, Holding] = {}
        self.slots: dict[date, int] = defaultdict(int)
        self.exited: set[tuple[str, date]] = set()
        self.fills: list[Fill] = []
        self.skips: list[Skip] = []

    # ------------------------------------------------------------ the day loop

    def run(self, progress: Callable[[int], None] | None = None) -> RunResult:
        """Simulate every day; ``progress`` hears the number of days done, now and then."""
        dates = self.bars.dates
        equity = np.empty(len(dates))
        last = len(dates) - 1
        for d in range(len(dates)):
            if any(h.pending is not None for h in self.holdings.values()):
                self._open(d)
            if self.stop_fraction is not None:
                self._stops(d)
            if d in self.entries:
                self._enter(d)
            if self.daily is not None and d < last:
                self._evaluate(d, self.daily, dates[d], d + 1)
            review = self.reviews.get(d)
            if review is not None and self.weekly is not None:
                self._evaluate(d, self.weekly, review.on, review.due)
            equity[d] = self._equity_float(d)
            if progress is not None and (d % _PROGRESS_EVERY == _PROGRESS_EVERY - 1 or d == last):
                progress(d % _PROGRESS_EVERY + 1)
        open_positions = {s: h.qty for s, h in self.holdings.items()}
        return RunResult(
            self.policy, dates, equity, self.initial_cash, self.fills, self.skips, open_positions
        )

    # ------------------------------------------------------------ fills

    def _sell(
        self,
        d: int,
        h: Holding,
        qty: Decimal,
        price: Decimal,
        source: str,
        reasons: tuple[str, ...],
    ) -> None:
        day = self.bars.dates[d]
        qty = min(qty, h.qty)
        self.cash += qty * price
        pnl = (price - h.entry_price) * qty
        hold = (day - h.opened_at).days
        self.fills.append(Fill(day, h.symbol, "sell", qty, price, source, reasons, pnl, hold))
        h.qty -= qty
        if h.qty <= 0:
            del self.holdings[h.symbol]
            self.exited.add((h.symbol, week_start(day)))

    def _open(self, d: int) -> None:
        opens = self.bars.open[d]
        for h in list(self.holdings.values()):
            p = h.pending
            if p is None or p.due > d or np.isnan(opens[h.col]):
                continue
            h.pending = None
            self._sell(d, h, p.qty, dec(float(opens[h.col])), p.source.value, p.reasons)

    def _stops(self, d: int) -> None:
        lows, opens = self.bars.low[d], self.bars.open[d]
        for h in list(self.holdings.values()):
            if h.stop_price is None or h.opened_day >= d or not lows[h.col] <= float(h.stop_price):
                continue
            price = min(h.stop_price, dec(float(opens[h.col])))
            if h.pending is not None and h.pending.week is not None:
                self.slots[h.pending.week] -= 1  # the cancelled decision gives its slot back
            h.pending = None
            self._sell(d, h, h.qty, price, STOP_LOSS, (STOP_LOSS,))

    def _enter(self, d: int) -> None:
        day = self.bars.dates[d]
        closes = self.bars.close[d]
        equity = self._equity(d)
        for e in self.entries[d]:
            reason = self._entry_blocked(e)
            if reason is None:
                reason = self._buy(d, e, dec(float(closes[self.columns[e.symbol]])), equity)
            if reason is not None:
                self.skips.append(Skip(day, e.symbol, ENTRY, reason.value))

    def _entry_blocked(self, e: Entry) -> SkipReason | None:
        if e.symbol in self.holdings:
            return SkipReason.ALREADY_HELD
        if (e.symbol, week_start(e.day)) in self.exited:
            return SkipReason.EXITED_THIS_WEEK
        return None

    def _buy(self, d: int, e: Entry, price: Decimal, equity: Decimal) -> SkipReason | None:
        weight = e.weight if e.weight is not None else self.default_weight
        if self.max_entry is not None:
            weight = min(weight, self.max_entry)
        qty = (weight * equity / price).to_integral_value(rounding=ROUND_FLOOR)
        if qty <= 0:
            return SkipReason.TOO_SMALL
        qty = min(qty, (self.cash / price).to_integral_value(rounding=ROUND_FLOOR))
        if qty <= 0:
            return SkipReason.INSUFFICIENT_CASH
        self.cash -= qty * price
        stop = None
        if self.stop_fraction is not None:
            stop = (price * (_ONE - self.stop_fraction)).quantize(_CENT)
        self.holdings[e.symbol] = Holding(
            e.symbol, self.columns[e.symbol], qty, price, e.day, d, e.catalyst_date, stop
        )
        self.fills.append(Fill(e.day, e.symbol, "buy", qty, price, ENTRY))
        return None

    # ------------------------------------------------------------ rules

    def _equity(self, d: int) -> Decimal:
        closes = self.bars.last_close[d]
        return self.cash + sum(
            (h.qty * dec(float(closes[h.col])) for h in self.holdings.values()), Decimal(0)
        )

    def _equity_float(self, d: int) -> float:
        closes = self.bars.last_close[d]
        held = sum(float(h.qty) * float(closes[h.col]) for h in self.holdings.values())
        return float(self.cash) + held

    def _evaluate(self, d: int, rb: RuleBlock, today: date, due: int) -> None:
        closes = self.bars.last_close[d]
        candidates = [h for h in self.holdings.values() if h.opened_day < d]
        if not candidates:
            return
        prices = {h.symbol: dec(float(closes[h.col])) for h in self.holdings.values()}
        equity = self.cash + sum(
            (h.qty * prices[h.symbol] for h in self.holdings.values()), Decimal(0)
        )
        veto = self.policy.research_can_veto
        proposals = []
        for h in candidates:
            position = Position(
                symbol=h.symbol,
                qty=h.qty,
                avg_entry_price=h.entry_price,
                current_price=prices[h.symbol],
                opened_at=h.opened_at,
                catalyst_date=h.catalyst_date,
                stop_price=h.stop_price,
                profit_levels_taken=frozenset(h.levels),
            )
            proposal = evaluate_position(position, rb, equity, today, research_can_veto=veto)
            if proposal is not None:
                proposals.append((proposal, h))
        proposals.sort(key=lambda item: item[0].priority)
        source = rb.block.source
        week = week_start(self.bars.dates[due])
        for proposal, h in proposals:
            reason = self._queue(h, proposal, source, due, week)
            if reason is not None:
                self.skips.append(Skip(self.bars.dates[d], h.symbol, source.value, reason.value))
            elif proposal.profit_level is not None:
                h.levels.add(proposal.profit_level)  # marked when the decision is made

    def _queue(
        self, h: Holding, proposal: Proposal, source: Source, due: int, week: date
    ) -> SkipReason | None:
        """Queue the exit unless something stops it (SPEC §3, §14); None when queued."""
        if proposal.action is Action.HOLD:
            return SkipReason.VETOED
        if h.pending is not None:
            return SkipReason.OPEN_DECISION
        if proposal.is_too_small:
            return SkipReason.TOO_SMALL
        capped = takes_slot(proposal.action, source, self.policy.cap_sources)
        if capped:
            if self.slots[week] >= self.policy.max_exits_per_week:
                return SkipReason.WEEKLY_CAP_REACHED
            self.slots[week] += 1
        reasons = tuple(proposal.reasons)
        h.pending = Pending(
            proposal.action, proposal.qty, reasons, source, due, week if capped else None
        )
        return None


def run_policy(
    bars: Bars,
    entries: list[Entry],
    policy: Policy,
    *,
    cash: Decimal,
    default_weight: Decimal,
    progress: Callable[[int], None] | None = None,
) -> RunResult:
    sim = Simulation(bars, entries, policy, cash=cash, default_weight=default_weight)
    return sim.run(progress)
