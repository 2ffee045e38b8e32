"""``rebalancerd`` command line (SPEC §10, §13).

Exit codes: 0 ok, 2 usage, 78 configuration, 1 anything else. Errors are one
line on stderr; with ``--json`` stdout holds the JSON document alone and logs
go to stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
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
    to_jsonable,
)
from rebalancerd.composition import App
from rebalancerd.errors import RebalancerdError
from rebalancerd.ports import DecisionRecord
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
# Each command module imports the shared options from cli.common; registering
# them here (after `cli` exists) keeps the imports one-directional.
from rebalancerd.cli.backtest import backtest, report  # noqa: E402
from rebalancerd.cli.daemon import healthcheck, run, schedule  # noqa: E402
from rebalancerd.cli.operator import approve, export_command, reject  # noqa: E402
from rebalancerd.cli.research import check_report, context_command  # noqa: E402
from rebalancerd.cli.views import caps, decision_command, decisions, positions, runs  # noqa: E402

for _command in (
    run,
    schedule,
    healthcheck,
    decisions,
    decision_command,
    positions,
    caps,
    runs,
    approve,
    reject,
    export_command,
    context_command,
    check_report,
    backtest,
    report,
):
    cli.add_command(_command)
