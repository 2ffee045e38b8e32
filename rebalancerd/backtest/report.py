"""The evidence a backtest leaves: a comparison table, a Markdown report, an equity PNG.

The PNG is drawn on a bare :class:`~matplotlib.figure.Figure` with the Agg
canvas, so no pyplot global state and no display are involved.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rebalancerd.backtest.metrics import Metrics
from rebalancerd.backtest.runner import Run

#: (column title, metric, format) of the comparison table
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("total return", "total_return", "pct"),
    ("annual", "annual_return", "pct"),
    ("max drawdown", "max_drawdown", "pct"),
    ("Sharpe", "sharpe", "num"),
    ("trades", "trades", "int"),
    ("turnover/yr", "turnover", "num"),
    ("win rate", "win_rate", "pct"),
    ("avg hold d", "avg_hold_days", "num1"),
    ("short-term gains", "short_term_gains", "money"),
    ("final equity", "final_equity", "money"),
)


def fmt(value: Any, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "pct":
        return f"{value * 100:+.1f}%"
    if kind == "num":
        return f"{value:.2f}"
    if kind == "num1":
        return f"{value:.1f}"
    if kind == "money":
        return f"{value:,.0f}"
    return str(value)


def rules_text(m: Metrics) -> str:
    return ", ".join(f"{k} {v}" for k, v in m.exits_per_rule.items()) or "–"


def table_rows(runs: Sequence[Run]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the comparison table, one row per run, in the given order."""
    header = ["policy", *(title for title, _, _ in COLUMNS), "exits per rule"]
    rows = [
        [
            run.name,
            *(fmt(getattr(run.metrics, attr), kind) for _, attr, kind in COLUMNS),
            rules_text(run.metrics),
        ]
        for run in runs
    ]
    return header, rows


def to_json(runs: Sequence[Run], rank_by: str | None = None) -> dict[str, Any]:
    return {
        "rank_by": rank_by,
        "runs": [
            {
                "policy": run.policy.name,
                "label": run.name,
                "params": run.params,
                "metrics": run.metrics.as_dict(),
                "open_positions": len(run.result.open_positions),
            }
            for run in runs
        ],
    }


def markdown(runs: Sequence[Run], *, title: str, notes: Sequence[str] = ()) -> str:
    header, rows = table_rows(runs)
    lines = [f"# {title}", "", *notes, ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    lines += [
        "",
        "Returns from the daily equity curve (cash + positions at the close); Sharpe "
        "annualised with √252, no risk-free rate; turnover/yr = (bought + sold) / 2 / mean "
        "equity per year; win rate = share of sales above their entry price; short-term gains = "
        "realised P&L on shares held 365 days or less. `stop_loss` counts protective "
        "stops; the other names are the rules of SPEC §2.",
        "",
        "![equity curves](equity.png)",
        "",
    ]
    return "\n".join(lines)


def equity_png(runs: Sequence[Run], path: Path, *, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for run in runs:
        days = np.array(run.result.dates, dtype="datetime64[D]")
        ax.plot(days, run.result.equity, label=run.name, linewidth=1.2)
    ax.set_title(title)
    ax.set_ylabel("equity")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)


def write_fills(runs: Sequence[Run], path: Path) -> None:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(
            ["policy", "date", "symbol", "side", "qty", "price", "source", "reasons", "pnl"]
        )
        for run in runs:
            for f in run.result.fills:
                pnl = "" if f.pnl is None else f"{f.pnl:.2f}"
                out.writerow(
                    [run.name, f.day, f.symbol, f.side, f.qty, f.price, f.source,
                     ";".join(f.reasons), pnl]
                )  # fmt: skip


def write_all(
    runs: Sequence[Run], out: Path, *, title: str, rank_by: str | None, notes: Sequence[str] = ()
) -> list[Path]:
    """report.md, equity.png (the first ten runs), fills.csv and results.json in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "report.md", out / "equity.png", out / "fills.csv", out / "results.json"]
    paths[0].write_text(markdown(runs, title=title, notes=notes), encoding="utf-8")
    equity_png(runs[:10], paths[1], title=title)
    write_fills(runs, paths[2])
    paths[3].write_text(json.dumps(to_json(runs, rank_by), indent=2) + "\n", encoding="utf-8")
    return paths
