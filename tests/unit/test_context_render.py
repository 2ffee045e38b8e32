"""The portfolio context for the research generator (SPEC §6 "context out")."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest

from rebalancerd.domain.report_parser import ReportError, parse_report
from rebalancerd.services.context_render import (
    ANSWER_FORMAT,
    SCHEMA,
    PortfolioContext,
    PositionContext,
    render_context_json,
    render_context_markdown,
)

NY = ZoneInfo("America/New_York")
AS_OF = datetime(2026, 11, 7, 12, 0, tzinfo=NY)


def ctx(**kw: object) -> PortfolioContext:
    base: dict[str, object] = {
        "account": "dee-bot",
        "as_of": AS_OF,
        "equity": D("100000.00"),
        "cash": D("25000.00"),
        "exits_used_this_week": 1,
        "slots_left": 2,
        "cap": 3,
        "positions": (
            PositionContext(
                symbol="AMD",
                qty=D("120"),
                avg_entry_price=D("100.00"),
                current_price=D("131.00"),
                plpc=D("31.0"),
                weight=D("15.72"),
                age_days=12,
                catalyst="Earnings",
                catalyst_date=date(2026, 11, 4),
                flags=(
                    ("profit_take", "up +31.0% ≥ +20.0% profit-take level, trim 50%"),
                    ("concentration", "weight 15.7% > 15.0% of equity, trim to 15.0%"),
                ),
            ),
            PositionContext(
                symbol="ENPH",
                qty=D("200"),
                avg_entry_price=D("50.00"),
                current_price=D("56.00"),
                plpc=D("12.0"),
                weight=D("11.2"),
                age_days=18,
                catalyst="Q3 | guidance",
                catalyst_date=date(2026, 11, 1),
                flags=(("stale", "held 18 days, catalyst passed, +12.0%"),),
            ),
            PositionContext(
                symbol="MSFT",
                qty=D("10.5000"),
                avg_entry_price=D("400"),
                current_price=None,
                age_days=None,
                catalyst_date=date(2026, 11, 20),
            ),
        ),
    }
    base.update(kw)
    return PortfolioContext(**base)  # type: ignore[arg-type]


def test_markdown_reads_well() -> None:
    md = render_context_markdown(ctx())
    lines = md.splitlines()
    assert lines[0] == "# Portfolio context: dee-bot"
    assert lines[2].startswith(
        "As of Saturday 2026-11-07 12:00 EST: equity $100,000.00, cash $25,000.00, "
        "3 open positions."
    )
    assert "| Symbol | Qty | Avg entry | Price | P&L | Weight | Age | Catalyst | Flags |" in lines
    assert (
        "| AMD | 120 | $100.00 | $131.00 | +31.0% | 15.7% | 12 d | Earnings, 2026-11-04 (passed) "
        "| profit_take, concentration |"
    ) in lines
    # pipes in free text are escaped so the table keeps its columns
    assert (
        "| ENPH | 200 | $50.00 | $56.00 | +12.0% | 11.2% | 18 d "
        "| Q3 \\| guidance, 2026-11-01 (passed) | stale |" in lines
    )
    assert "| MSFT | 10.5 | $400.00 | — | — | — | — | 2026-11-20 | — |" in lines
    assert "## Flagged for exit consideration" in lines
    assert "- **ENPH**: stale: held 18 days, catalyst passed, +12.0%" in lines
    assert any(
        line.startswith("- **AMD**: profit_take: up +31.0%") and "; concentration: weight" in line
        for line in lines
    )
    assert not any(line.startswith("- **MSFT**") for line in lines)
    assert "1 of 3 exits used this week; 2 slots left." in md
    assert ANSWER_FORMAT in md
    assert md.endswith("\n")


def test_markdown_empty_portfolio_and_no_flags() -> None:
    md = render_context_markdown(ctx(positions=(), exits_used_this_week=3, slots_left=0))
    assert "0 open positions" in md
    assert "No open positions." in md
    assert "No position is flagged by the rules this week." in md
    assert "3 of 3 exits used this week; 0 slots left." in md
    one = render_context_markdown(ctx(positions=ctx().positions[:1], slots_left=1))
    assert "1 open position." in one and "1 slot left." in one


def test_answer_format_is_what_the_parser_reads() -> None:
    filled = ANSWER_FORMAT.replace("SYMBOL", "AMD", 1).replace("SYMBOL", "ENPH", 1)
    filled = filled.replace("SYMBOL", "MSFT", 1).replace("SYMBOL", "TSLA", 1)
    parsed = parse_report(filled, report_date=date(2026, 11, 7))
    got = [
        (r.symbol, r.action.value, r.fraction, r.weight, r.catalyst_date)
        for r in parsed.recommendations
    ]
    assert got == [
        ("AMD", "EXIT", None, None, None),
        ("ENPH", "TRIM", D("0.5"), None, None),
        ("MSFT", "HOLD", None, None, None),
        ("TSLA", "BUY", None, D("5"), date(2026, 11, 15)),
    ]


def test_context_fed_back_as_a_report_is_rejected_not_executed() -> None:
    with pytest.raises(ReportError, match="not a ticker symbol: 'SYMBOL'"):
        parse_report(render_context_markdown(ctx()), report_date=date(2026, 11, 7))


def test_json_keys_and_values() -> None:
    data = render_context_json(ctx())
    assert json.loads(json.dumps(data)) == data
    assert list(data) == [
        "schema",
        "account",
        "as_of",
        "equity",
        "cash",
        "cap",
        "exits_used_this_week",
        "slots_left",
        "positions",
        "answer_format",
    ]
    assert data["schema"] == SCHEMA
    assert data["as_of"] == "2026-11-07T12:00:00-05:00"
    assert (data["equity"], data["cash"]) == ("100000.00", "25000.00")
    assert (data["cap"], data["exits_used_this_week"], data["slots_left"]) == (3, 1, 2)
    amd, enph, msft = data["positions"]
    assert amd == {
        "symbol": "AMD",
        "qty": "120",
        "avg_entry_price": "100.00",
        "current_price": "131.00",
        "market_value": "15720.00",
        "plpc_pct": "31.0",
        "weight_pct": "15.72",
        "age_days": 12,
        "catalyst": "Earnings",
        "catalyst_date": "2026-11-04",
        "catalyst_passed": True,
        "flags": [
            {"rule": "profit_take", "detail": "up +31.0% ≥ +20.0% profit-take level, trim 50%"},
            {"rule": "concentration", "detail": "weight 15.7% > 15.0% of equity, trim to 15.0%"},
        ],
    }
    assert enph["catalyst"] == "Q3 | guidance"
    assert msft["current_price"] is None and msft["plpc_pct"] is None
    assert msft["market_value"] == "4200.0000"
    assert msft["catalyst_passed"] is False and msft["flags"] == []
    assert data["answer_format"] == ANSWER_FORMAT


def test_catalyst_passed_uses_the_as_of_date() -> None:
    p = PositionContext("X", D(1), D(1), catalyst_date=date(2026, 11, 7))
    same_day = render_context_json(ctx(positions=(p,)))
    assert same_day["positions"][0]["catalyst_passed"] is False
    next_day = render_context_json(
        ctx(positions=(p,), as_of=datetime(2026, 11, 8, 9, 0, tzinfo=NY))
    )
    assert next_day["positions"][0]["catalyst_passed"] is True
    assert (
        render_context_json(ctx(positions=(PositionContext("X", D(1), D(1)),)))["positions"][0][
            "catalyst_passed"
        ]
        is None
    )


def test_negative_money_and_short_positions() -> None:
    p = PositionContext("X", D("-10"), D("20"), current_price=D("18"), plpc=D("10"), weight=D("2"))
    md = render_context_markdown(ctx(positions=(p,), cash=D("-5.5")))
    assert "cash -$5.50" in md
    assert "| X | -10 | $20.00 | $18.00 | +10.0% | 2.0% |" in md
    assert render_context_json(ctx(positions=(p,)))["positions"][0]["market_value"] == "-180"
