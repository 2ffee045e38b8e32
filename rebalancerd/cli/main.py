"""``rebalancerd`` command line (SPEC §10, §13).

Exit codes: 0 ok, 2 usage, 78 configuration, 1 anything else. Errors are one
line on stderr; with ``--json`` stdout holds the JSON document alone and logs
go to stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import structlog

from rebalancerd.cli.common import (
    accounts_option,
    common_options,
    json_option,
    open_app,
    select_accounts,
)
from rebalancerd.cli.context import CliState, pass_state
from rebalancerd.cli.output import (
    console,
    decision_dict,
    decisions_table,
    dump_json,
    table,
    to_jsonable,
)
from rebalancerd.composition import App
from rebalancerd.domain.model import Status
from rebalancerd.errors import RebalancerdError
from rebalancerd.ports import DecisionFilter, DecisionRecord
from rebalancerd.services.jobs import JobResult, Jobs

F = TypeVar("F", bound=Callable[..., Any])

log = structlog.get_logger(__name__)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@common_options
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default=None)
@click.option("--log-format", type=click.Choice(["json", "console"]), default=None)
@click.version_option(package_name="rebalancerd")
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: Path | None,
    now_text: str | None,
    log_level: str | None,
    log_format: str | None,
) -> None:
    """Exit management daemon for automated equity-trading bots."""
    ctx.obj = CliState(config_path, now_text, log_level, log_format)


def _print_decisions(app: App, decisions: list[DecisionRecord], as_json: bool, title: str) -> None:
    if as_json:
        click.echo(dump_json([decision_dict(d, app.tz) for d in decisions]))
    elif decisions:
        console().print(decisions_table(decisions, app.tz, title))
    else:
        click.echo(f"{title}: no decisions")


def _finish_job(app: App, result: JobResult, as_json: bool, title: str) -> None:
    _print_decisions(app, result.decisions, as_json, title)
    for account, error in result.failures.items():
        click.echo(f"rebalancerd: {account}: {error}", err=True)
    if not result.ok:
        sys.exit(1)


# ------------------------------------------------------------------ commands


@cli.command("check-config")
@common_options
@json_option
@pass_state
def check_config(
    state: CliState, config_path: Path | None, now_text: str | None, as_json: bool
) -> None:
    """Validate the config and print the effective settings (secrets masked)."""
    from rebalancerd.config.settings import effective_config

    settings = state.settings(config_path)
    data = to_jsonable(effective_config(settings))
    if as_json:
        click.echo(dump_json(data))
        return
    click.echo(f"# {settings.config_path}: OK")
    click.echo(dump_json(data))


@cli.command()
@common_options
@pass_state
def migrate(state: CliState, config_path: Path | None, now_text: str | None) -> None:
    """Apply database migrations up to the latest revision."""
    from rebalancerd.adapters.db.migrate import current_revision

    with open_app(state, config_path, now_text) as app:
        click.echo(f"database at revision {current_revision(app.engine)}")


def _job_command(name: str, help_text: str) -> Callable[[Callable[..., JobResult]], Any]:
    def wrap(run: Callable[..., JobResult]) -> Any:
        @cli.command(name, help=help_text)
        @common_options
        @accounts_option
        @click.option("--dry-run", is_flag=True, help="Record what would happen; send nothing.")
        @json_option
        @pass_state
        def command(
            state: CliState,
            config_path: Path | None,
            now_text: str | None,
            accounts: tuple[str, ...],
            dry_run: bool,
            as_json: bool,
        ) -> None:
            with open_app(state, config_path, now_text) as app:
                jobs = Jobs(app)
                result = run(jobs, select_accounts(app, accounts), dry_run)
                _finish_job(app, result, as_json, name)

        return command

    return wrap


@_job_command("review", "Run the weekly review now (what Saturday runs).")
def _review(jobs: Jobs, accounts: list[str], dry_run: bool) -> JobResult:
    return jobs.review(accounts, dry_run=dry_run)


@_job_command("guard", "Run the daily guards now (what 16:30 runs).")
def _guard(jobs: Jobs, accounts: list[str], dry_run: bool) -> JobResult:
    return jobs.guard(accounts, dry_run=dry_run)


@_job_command("execute", "Execute the approved decisions queued for the coming execution.")
def _execute(jobs: Jobs, accounts: list[str], dry_run: bool) -> JobResult:
    return jobs.execute(accounts, dry_run=dry_run)


@cli.command()
@common_options
@accounts_option
@click.option("--pending", is_flag=True, help="Only decisions waiting for approval.")
@click.option("--status", "statuses", multiple=True, type=click.Choice([s.value for s in Status]))
@click.option("--symbol", default=None)
@click.option("--since", type=click.DateTime(), default=None, help="Created on or after (local).")
@click.option("--limit", type=click.IntRange(min=1), default=None)
@json_option
@pass_state
def decisions(
    state: CliState,
    config_path: Path | None,
    now_text: str | None,
    accounts: tuple[str, ...],
    pending: bool,
    statuses: tuple[str, ...],
    symbol: str | None,
    since: datetime | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """List recorded decisions, newest last."""
    wanted = {Status(s) for s in statuses}
    if pending:
        wanted.add(Status.PENDING_APPROVAL)
    with open_app(state, config_path, now_text) as app:
        selected = select_accounts(app, accounts)
        flt = DecisionFilter(
            statuses=frozenset(wanted) or None,
            symbol=symbol.upper() if symbol else None,
            since=since.replace(tzinfo=app.tz) if since else None,
        )
        found = [d for d in app.store.list_decisions(flt) if d.account in selected]
        if limit:
            found = found[-limit:]
        _print_decisions(app, found, as_json, "decisions")


@cli.command()
@common_options
@accounts_option
@json_option
@pass_state
def positions(
    state: CliState,
    config_path: Path | None,
    now_text: str | None,
    accounts: tuple[str, ...],
    as_json: bool,
) -> None:
    """Open positions with age, P&L, weight, stop and the rules that flag them."""
    from rebalancerd.services.views import positions_view

    with open_app(state, config_path, now_text) as app:
        rows: list[dict[str, Any]] = []
        for name in select_accounts(app, accounts):
            rows.extend(positions_view(app.account(name), app.store, app.clock.now()))
        if as_json:
            click.echo(dump_json(to_jsonable(rows, app.tz)))
            return
        columns = ["account", "symbol", "qty", "avg_entry_price", "current_price", "plpc"]
        columns += ["weight", "age_days", "catalyst_date", "stop_price"]
        body = [
            [
                *(r[c] for c in columns),
                [f"{f['rule']}({f['block']}): {f['detail']}" for f in r["flags"]],
            ]
            for r in rows
        ]
        headers = [*columns[:5], "P&L %", "weight %", "age", "catalyst", "stop", "flags"]
        console().print(table("positions", headers, body))


@cli.command()
@common_options
@accounts_option
@json_option
@pass_state
def caps(
    state: CliState,
    config_path: Path | None,
    now_text: str | None,
    accounts: tuple[str, ...],
    as_json: bool,
) -> None:
    """Weekly exit slots used and left, per account."""
    from rebalancerd.services.views import caps_view

    with open_app(state, config_path, now_text) as app:
        data: dict[str, Any] = {}
        for name in select_accounts(app, accounts):
            ctx = app.account(name)
            current, upcoming = caps_view(ctx, app.store, app.clock.now(), app.run_options())
            weeks = [current] if current.week_start == upcoming.week_start else [current, upcoming]
            data[name] = {
                "week_start": upcoming.week_start.isoformat(),
                "cap": upcoming.cap,
                "used": upcoming.used,
                "left": upcoming.left,
                "cap_sources": [s.value for s in ctx.config.cap_sources],
                "slots": [
                    {"slot": s.slot_no, "decision_id": s.decision_id, "symbol": s.symbol}
                    for s in upcoming.slots
                ],
                "weeks": [
                    {
                        "week_start": w.week_start.isoformat(),
                        "used": w.used,
                        "left": w.left,
                        "slots": [
                            {"slot": s.slot_no, "decision_id": s.decision_id, "symbol": s.symbol}
                            for s in w.slots
                        ],
                    }
                    for w in weeks
                ],
            }
        if as_json:
            click.echo(dump_json(data))
            return
        rows = [
            (
                name,
                w["week_start"],
                d["cap"],
                w["used"],
                w["left"],
                [s["symbol"] for s in w["slots"]],
            )
            for name, d in data.items()
            for w in d["weeks"]
        ]
        console().print(
            table(
                "weekly exit caps", ["account", "week of", "cap", "used", "left", "held by"], rows
            )
        )


def main() -> None:
    """Console-script entry point: map errors to exit codes and one stderr line."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except RebalancerdError as exc:
        click.echo(f"rebalancerd: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug: one line for the operator, details in the log
        log.exception("unexpected_error")
        click.echo(f"rebalancerd: unexpected error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)


# ------------------------------------------------------------------ command modules
from rebalancerd.cli.research import check_report, context_command  # noqa: E402

cli.add_command(context_command)
cli.add_command(check_report)
