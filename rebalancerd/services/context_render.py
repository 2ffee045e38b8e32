"""Render the portfolio context handed to the research generator (SPEC §6 "context out").

Pure: plain data in, text or JSON-ready dicts out; no clock, no I/O. The caller
fills a :class:`PortfolioContext` (percentages already as *percent* numbers:
``Decimal("12.5")`` for 12.5%) and writes the result wherever the research
provider wants it (a file next to the drop folder, a command's stdin, a prompt).

Markdown (:func:`render_context_markdown`) is written to be pasted into an LLM
prompt: one intro line, a positions table, the list of positions the rules
flag for exit consideration, the weekly exit-cap status, and the exact answer
format the report parser reads (the ``## PORTFOLIO REBALANCING`` block).
``as_of`` should be in the market's timezone: its date decides whether a
catalyst date has passed (SPEC §14, dates are local to the market).

JSON (:func:`render_context_json`) returns a dict with these stable keys
(Decimals as strings, dates ISO 8601, absent values ``null``)::

    {
      "schema": "rebalancerd.portfolio_context/1",
      "account": "dee-bot",
      "as_of": "2026-11-07T12:00:00-05:00",
      "equity": "100000.00",
      "cash": "25000.00",
      "cap": 3,                        # max exits (EXIT or TRIM) per week
      "exits_used_this_week": 1,
      "slots_left": 2,
      "positions": [
        {
          "symbol": "AMD",
          "qty": "120",
          "avg_entry_price": "100.00",
          "current_price": "131.00",   # null when unknown
          "market_value": "15720.00",  # qty × (current_price or avg_entry_price)
          "plpc_pct": "31.0",          # P&L in percent of entry; null when unknown
          "weight_pct": "15.7",        # percent of equity; null when unknown
          "age_days": 12,              # null when unknown
          "catalyst": "Earnings",      # null when none
          "catalyst_date": "2026-11-04",
          "catalyst_passed": true,     # catalyst_date before as_of's date; null without a date
          "flags": [{"rule": "profit_take", "detail": "up +31.0% ≥ +20.0% ..."}]
        }
      ],
      "answer_format": "## PORTFOLIO REBALANCING\\n..."
    }
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "ANSWER_FORMAT",
    "SCHEMA",
    "PortfolioContext",
    "PositionContext",
    "render_context_json",
    "render_context_markdown",
]

SCHEMA = "rebalancerd.portfolio_context/1"

#: The block the report parser reads (rebalancerd.domain.report_parser).
ANSWER_FORMAT = """\
## PORTFOLIO REBALANCING

### EXITS
- **SYMBOL**: EXIT - reason → expected outcome
- **SYMBOL**: TRIM 50% - reason → expected outcome

### HOLDS
- **SYMBOL**: HOLD - reason

### NEW ENTRIES
- **SYMBOL**: BUY - catalyst (Nov 15) (5% weight)"""

_ANSWER_RULES = """\
Rules for that block: one line per symbol; the action is exactly EXIT, \
TRIM N% (N = percent of the position to sell), HOLD or BUY; write a catalyst \
date as "Nov 15" and a new entry's size as "(5% weight)"; never list a symbol \
twice with different actions; list exits in order of priority. Give every \
open position a line (EXIT, TRIM or HOLD). A HOLD can keep a position \
flagged "stale" or "profit_take" for another week; it never stops a loss cut \
or a stop-approach exit."""


@dataclass(frozen=True, slots=True)
class PositionContext:
    """One open position as the research generator sees it.

    ``plpc`` and ``weight`` are percent numbers (12.5 = 12.5%); ``flags`` are
    ``(rule, detail)`` pairs of the rules that fire for it, e.g.
    ``("stale", "held 18 days, catalyst passed, +12.0%")``.
    """

    symbol: str
    qty: Decimal
    avg_entry_price: Decimal
    current_price: Decimal | None = None
    plpc: Decimal | None = None
    weight: Decimal | None = None
    age_days: int | None = None
    catalyst: str | None = None
    catalyst_date: date | None = None
    flags: Sequence[tuple[str, str]] = ()

    @property
    def market_value(self) -> Decimal:
        price = self.current_price if self.current_price is not None else self.avg_entry_price
        return self.qty * price


@dataclass(frozen=True, slots=True)
class PortfolioContext:
    account: str
    as_of: datetime
    equity: Decimal
    cash: Decimal
    exits_used_this_week: int
    slots_left: int
    cap: int
    positions: Sequence[PositionContext] = field(default_factory=tuple)


# --------------------------------------------------------------------------- formatting


def _money(value: Decimal | None) -> str:
    if value is None:
        return "—"
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"


def _qty(value: Decimal) -> str:
    text = f"{value.normalize():f}"
    return text


def _pct(value: Decimal | None, *, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.1f}%" if signed else f"{value:.1f}%"


def _cell(text: str) -> str:
    """Table-safe text: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _catalyst_passed(p: PositionContext, today: date) -> bool | None:
    return None if p.catalyst_date is None else p.catalyst_date < today


def _catalyst_text(p: PositionContext, today: date) -> str:
    parts = []
    if p.catalyst:
        parts.append(p.catalyst)
    if p.catalyst_date is not None:
        passed = " (passed)" if _catalyst_passed(p, today) else ""
        parts.append(f"{p.catalyst_date.isoformat()}{passed}")
    return ", ".join(parts) if parts else "—"


def _as_of_text(as_of: datetime) -> str:
    zone = as_of.tzname()
    text = f"{as_of:%A %Y-%m-%d %H:%M}"
    return f"{text} {zone}" if zone else text


# --------------------------------------------------------------------------- renderers


def render_context_markdown(ctx: PortfolioContext) -> str:
    today = ctx.as_of.date()
    n = len(ctx.positions)
    lines = [
        f"# Portfolio context: {ctx.account}",
        "",
        f"As of {_as_of_text(ctx.as_of)}: equity {_money(ctx.equity)}, cash {_money(ctx.cash)}, "
        f"{n} open position{'' if n == 1 else 's'}. Review every position (HOLD, EXIT or "
        "TRIM) and propose new entries for next week's execution.",
        "",
        "## Positions",
        "",
    ]
    if ctx.positions:
        lines += [
            "| Symbol | Qty | Avg entry | Price | P&L | Weight | Age | Catalyst | Flags |",
            "|---|---:|---:|---:|---:|---:|---:|---|---|",
        ]
        for p in ctx.positions:
            age = "—" if p.age_days is None else f"{p.age_days} d"
            flags = ", ".join(rule for rule, _ in p.flags) or "—"
            lines.append(
                f"| {_cell(p.symbol)} | {_qty(p.qty)} | {_money(p.avg_entry_price)} "
                f"| {_money(p.current_price)} | {_pct(p.plpc, signed=True)} | {_pct(p.weight)} "
                f"| {age} | {_cell(_catalyst_text(p, today))} | {_cell(flags)} |"
            )
    else:
        lines.append("No open positions.")
    lines += ["", "## Flagged for exit consideration", ""]
    flagged = [p for p in ctx.positions if p.flags]
    if flagged:
        for p in flagged:
            details = "; ".join(f"{rule}: {' '.join(detail.split())}" for rule, detail in p.flags)
            lines.append(f"- **{p.symbol}**: {details}")
    else:
        lines.append("No position is flagged by the rules this week.")
    lines += ["", "## Weekly exit cap", ""]
    slots = f"{ctx.slots_left} slot{'' if ctx.slots_left == 1 else 's'} left"
    lines.append(
        f"{ctx.exits_used_this_week} of {ctx.cap} exits used this week; {slots}. "
        "Each EXIT or TRIM takes a slot; exits beyond the cap wait for next week, "
        "so list the most important first."
    )
    lines += [
        "",
        "## Expected answer format",
        "",
        "Answer with a section exactly like this one:",
        "",
        "```markdown",
        ANSWER_FORMAT,
        "```",
        "",
        _ANSWER_RULES,
        "",
    ]
    return "\n".join(lines)


def _s(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def render_context_json(ctx: PortfolioContext) -> dict[str, Any]:
    today = ctx.as_of.date()
    return {
        "schema": SCHEMA,
        "account": ctx.account,
        "as_of": ctx.as_of.isoformat(),
        "equity": str(ctx.equity),
        "cash": str(ctx.cash),
        "cap": ctx.cap,
        "exits_used_this_week": ctx.exits_used_this_week,
        "slots_left": ctx.slots_left,
        "positions": [
            {
                "symbol": p.symbol,
                "qty": str(p.qty),
                "avg_entry_price": str(p.avg_entry_price),
                "current_price": _s(p.current_price),
                "market_value": str(p.market_value),
                "plpc_pct": _s(p.plpc),
                "weight_pct": _s(p.weight),
                "age_days": p.age_days,
                "catalyst": p.catalyst,
                "catalyst_date": None if p.catalyst_date is None else p.catalyst_date.isoformat(),
                "catalyst_passed": _catalyst_passed(p, today),
                "flags": [{"rule": rule, "detail": detail} for rule, detail in p.flags],
            }
            for p in ctx.positions
        ],
        "answer_format": ANSWER_FORMAT,
    }
