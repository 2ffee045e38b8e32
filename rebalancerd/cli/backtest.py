"""``rebalancerd backtest`` and ``rebalancerd report``: the evidence commands (SPEC §11).

``backtest`` replays bars and entries through several policies; ``report``
prices every executed exit of the live database 1, 2 and 4 weeks later.

Policies are the presets (``none``, ``weekly``, ``daily``, ``hybrid``) and the
accounts of the config file, when one is given (``--config`` or
``REBALANCERD_CONFIG``). ``--sweep`` runs a grid ranked by ``--rank-by``.
With ``--json`` stdout holds only the JSON; the progress bar is on stderr.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import click
import structlog
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rebalancerd.cli.common import (
    accounts_option,
    common_options,
    json_option,
    open_app,
    select_accounts,
)
from rebalancerd.cli.context import CliState, pass_state
from rebalancerd.cli.output import console, dump_json, table
from rebalancerd.config.settings import CONFIG_ENV
from rebalancerd.errors import UsageError
from rebalancerd.logs import configure_logging

if TYPE_CHECKING:  # the backtest package (numpy, pandas) is imported when a command runs
    from rebalancerd.backtest.data import Bars
    from rebalancerd.backtest.policy import Policy
    from rebalancerd.backtest.runner import Run

log = structlog.get_logger(__name__)

#: metrics a sweep may rank by (checked again by ``rank``)
RANK_BY = (
    "total_return",
    "annual_return",
    "sharpe",
    "max_drawdown",
    "win_rate",
    "final_equity",
    "realised_pnl",
    "short_term_gains",
)

_HUNDRED = Decimal(100)


def _accounts(state: CliState, config_path: Path | None) -> dict[str, Policy]:
    """Policies of the configured accounts; none without a config file."""
    from rebalancerd.backtest.policy import from_account

    if config_path is None and state.config_path is None and not os.environ.get(CONFIG_ENV):
        configure_logging(state.log_level or "warning", state.log_format or "console")
        return {}
    settings = state.settings(config_path)
    return {
        name: from_account(name, account, settings.schedule)
        for name, account in settings.accounts.items()
    }


@contextmanager
def _progress(total: int, show: bool) -> Iterator[Progress | None]:
    err = Console(stderr=True)
    if not show or not err.is_terminal:
        yield None
        return
    bar = Progress(
        TextColumn("backtest"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    with bar:
        yield bar


def _positive(name: str, value: str) -> Decimal:
    try:
        number = Decimal(value)
    except ArithmeticError:
        raise UsageError(f"{name} {value!r}: not a number") from None
    if not number.is_finite() or number <= 0:
        raise UsageError(f"{name} {value!r}: must be above 0")
    return number


def _bars(bars_path: Path, entries_path: Path, end_text: str | None, url: str | None) -> Bars:
    """The bars CSV, or Alpaca's daily bars from the first entry to ``--end``."""
    from rebalancerd.backtest.data import entry_symbols, load_bars

    if str(bars_path) != "alpaca":
        return load_bars(bars_path)
    from rebalancerd.backtest.alpaca_bars import NY, alpaca_bars

    try:
        end = date.fromisoformat(end_text) if end_text else datetime.now(NY).date()
    except ValueError:
        raise UsageError(f"--end {end_text!r}: use YYYY-MM-DD") from None
    symbols, start = entry_symbols(entries_path)
    return alpaca_bars(symbols, start, end, environ=os.environ, url=url)


def _print_table(runs: list[Run], title: str) -> None:
    from rebalancerd.backtest.report import table_rows

    header, rows = table_rows(runs)
    grid = Table(title=title, title_justify="left")
    for n, name in enumerate(header):
        # numbers right-aligned; the policy and the per-rule counts never wrap
        grid.add_column(
            name, justify="left" if n in (0, len(header) - 1) else "right", no_wrap=True
        )
    for row in rows:
        grid.add_row(*row)
    console().print(grid)


@click.command("backtest")
@common_options
@click.option(
    "--bars",
    "bars_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Daily bars CSV (date,symbol,open,high,low,close,volume), or 'alpaca' to fetch them.",
)
@click.option(
    "--end",
    "end_text",
    metavar="YYYY-MM-DD",
    default=None,
    help="--bars alpaca: last day to fetch (default today); the first is the first entry.",
)
@click.option(
    "--data-url",
    default=None,
    metavar="URL",
    help="--bars alpaca: market-data endpoint override (a proxy, a test server).",
)
@click.option(
    "--entries",
    "entries_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Entries CSV: date,symbol[,weight][,catalyst_date] (weight in percent).",
)
@click.option(
    "--policy",
    "policies",
    multiple=True,
    metavar="NAME",
    help="none|weekly|daily|hybrid or a configured account (repeatable; default all).",
)
@click.option("--cash", default="100000", show_default=True, help="Starting cash.")
@click.option(
    "--weight",
    default="10",
    show_default=True,
    help="Entry weight in percent of equity when the entries file has none.",
)
@click.option(
    "--sweep",
    "sweeps",
    multiple=True,
    metavar="KEY=V1,V2",
    help="Run a grid over [weekly.|daily.]KEY values (repeatable).",
)
@click.option(
    "--rank-by",
    type=click.Choice(RANK_BY),
    default="sharpe",
    show_default=True,
    help="Metric that orders a sweep (higher is better).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Write report.md, equity.png, fills.csv and results.json here.",
)
@json_option
@pass_state
def backtest(
    state: CliState,
    config_path: Path | None,
    now_text: str | None,
    bars_path: Path,
    end_text: str | None,
    data_url: str | None,
    entries_path: Path,
    policies: tuple[str, ...],
    cash: str,
    weight: str,
    sweeps: tuple[str, ...],
    rank_by: str,
    out_dir: Path | None,
    as_json: bool,
) -> None:
    """Compare rebalancing policies on historical daily bars (same rules as live)."""  # fmt: skip
    from rebalancerd.backtest.data import load_entries
    from rebalancerd.backtest.report import to_json, write_all
    from rebalancerd.backtest.runner import (
        Options,
        grid,
        parse_sweep,
        rank,
        run_all,
        select_policies,
    )

    default_weight = _positive("--weight", weight)
    if default_weight > _HUNDRED:
        raise UsageError(f"--weight {weight!r}: at most 100 (percent)")
    options = Options(
        cash=_positive("--cash", cash),
        default_weight=default_weight / _HUNDRED,
        sweeps=tuple(parse_sweep(s) for s in sweeps),
    )
    variants = grid(select_policies(policies, _accounts(state, config_path)), options.sweeps)
    started = time.perf_counter()
    bars = _bars(bars_path, entries_path, end_text, data_url)
    entries = load_entries(entries_path, bars)
    total = len(variants) * len(bars.dates)
    with _progress(total, show=total >= 10_000) as bar:
        task = bar.add_task("runs", total=total) if bar is not None else None
        advance = (lambda n: bar.advance(task, n)) if bar is not None and task is not None else None
        runs = run_all(bars, entries, variants, options, advance)
    ranked = rank(runs, rank_by) if options.sweeps else runs
    log.info(
        "backtest_finished",
        runs=len(runs),
        symbols=len(bars.symbols),
        days=len(bars.dates),
        entries=len(entries),
        seconds=round(time.perf_counter() - started, 3),
    )
    title = f"backtest {bars.dates[0]} – {bars.dates[-1]}: {len(bars.symbols)} symbols"
    if options.sweeps:
        title += f", ranked by {rank_by}"
    if out_dir is not None:
        notes = [f"Bars `{bars_path}`, entries `{entries_path}` ({len(entries)} rows), "
                 f"starting cash {options.cash}, default weight {weight}%."]  # fmt: skip
        ranked_by = rank_by if options.sweeps else None
        paths = write_all(ranked, out_dir, title=title, rank_by=ranked_by, notes=notes)
        log.info("backtest_report_written", files=[str(p) for p in paths])
    if as_json:
        click.echo(dump_json(to_json(ranked, rank_by if options.sweeps else None)))
    else:
        _print_table(ranked, title)


def _money(value: Decimal | None) -> str:
    return "–" if value is None else f"{value:+,.2f}"


@click.command("report")
@common_options
@accounts_option
@click.option(
    "--prices",
    "prices_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Price history CSV: date,symbol,close (a bars file will do).",
)
@json_option
@pass_state
def report(
    state: CliState,
    config_path: Path | None,
    now_text: str | None,
    accounts: tuple[str, ...],
    prices_path: Path,
    as_json: bool,
) -> None:
    """Exit regret: the price 1, 2 and 4 weeks after every executed exit, per rule."""  # fmt: skip
    from rebalancerd.backtest.data import load_bars
    from rebalancerd.backtest.regret import HORIZONS_WEEKS, executed_exits, regrets
    from rebalancerd.backtest.regret import to_json as regret_json
    from rebalancerd.backtest.regret import totals as regret_totals

    prices = load_bars(prices_path, closes_only=True)
    with open_app(state, config_path, now_text) as app:
        fills = executed_exits(app.store, select_accounts(app, accounts), app.tz)
    rows = regrets(fills, prices)
    log.info("exit_regret_reported", exits=len(rows), prices=str(prices_path))
    if as_json:
        click.echo(dump_json(regret_json(rows)))
        return
    weeks = [f"+{w}w left on table" for w in HORIZONS_WEEKS]
    header = ["date", "account", "symbol", "action", "reasons", "qty", "price", *weeks]
    body = [
        (r.fill.day, r.fill.account, r.fill.symbol, r.fill.action, list(r.fill.reasons),
         r.fill.qty, r.fill.price, *(_money(d) for d in r.deltas))
        for r in rows
    ]  # fmt: skip
    out = console()
    out.print(table("executed exits (> 0: left on the table, < 0: loss avoided)", header, body))
    sums = [(rule, *(_money(v) for v in vals)) for rule, vals in regret_totals(rows).items()]
    out.print(table("totals per rule (all = rebalanced vs holding)", ["rule", *weeks], sums))
