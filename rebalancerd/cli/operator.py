"""Operator commands that change or export the record: ``approve``, ``reject``, ``export``.

``approve`` / ``reject`` record who (the OS user) and when in the decision's
append-only history. An unknown id changes nothing and exits 2; a refused
approval (position gone or resized, not pending) is one stderr line and exit 1
while the others named still go through.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import click

from rebalancerd.cli.common import (
    accounts_option,
    common_options,
    json_option,
    open_app,
    select_accounts,
)
from rebalancerd.cli.context import CliState, pass_state
from rebalancerd.cli.output import decision_dict, dump_json
from rebalancerd.composition import App
from rebalancerd.domain.model import Status
from rebalancerd.errors import RebalancerdError, UsageError
from rebalancerd.services.approval import Outcome, operator_name
from rebalancerd.services.export import Exporter, write_csv, write_jsonl


def _report(app: App, outcomes: Sequence[Outcome], as_json: bool, verb: str) -> None:
    """Print the outcomes; refusals go to stderr and make the exit code 1."""
    if as_json:
        click.echo(
            dump_json(
                [
                    {**decision_dict(o.decision, app.tz), "ok": o.ok, "message": o.message}
                    for o in outcomes
                ]
            )
        )
    for o in outcomes:
        d = o.decision
        if o.ok and not as_json:
            click.echo(
                f"{verb} #{d.id} {d.account} {d.action.value} {d.qty} {d.symbol}: {o.message}"
            )
        elif not o.ok:
            click.echo(f"rebalancerd: {o.message}", err=True)
    if not outcomes and not as_json:
        click.echo("no decisions pending approval")
    if any(not o.ok for o in outcomes):
        sys.exit(1)


@click.command()
@common_options
@accounts_option
@click.argument("ids", nargs=-1, type=int, metavar="[ID]...")
@click.option("--all", "all_pending", is_flag=True, help="Every pending decision (of --account).")
@json_option
@pass_state
def approve(
    state: CliState,
    config_path: Path | None,
    now_text: str | None,
    accounts: tuple[str, ...],
    ids: tuple[int, ...],
    all_pending: bool,
    as_json: bool,
) -> None:
    """Approve pending decisions; refused if the position is gone or its size changed."""
    if bool(ids) == all_pending:
        raise UsageError("approve: give decision ids or --all (not both)")
    with open_app(state, config_path, now_text) as app:
        selected = select_accounts(app, accounts)
        actor, now = operator_name(), app.clock.now()
        if all_pending:
            outcomes = app.approval.approve_all(selected, actor=actor, now=now)
        else:
            restrict = set(selected) if accounts else None
            outcomes = app.approval.approve(list(ids), actor=actor, now=now, accounts=restrict)
        _report(app, outcomes, as_json, "approved")


@click.command()
@common_options
@accounts_option
@click.argument("ids", nargs=-1, type=int, required=True, metavar="ID...")
@click.option("--reason", default=None, help="Why (kept in the decision's history).")
@json_option
@pass_state
def reject(
    state: CliState,
    config_path: Path | None,
    now_text: str | None,
    accounts: tuple[str, ...],
    ids: tuple[int, ...],
    reason: str | None,
    as_json: bool,
) -> None:
    """Reject pending or approved decisions; their weekly slots are given back."""
    with open_app(state, config_path, now_text) as app:
        selected = select_accounts(app, accounts)
        actor = operator_name()
        outcomes = app.approval.reject(
            list(ids),
            actor=actor,
            now=app.clock.now(),
            reason=reason,
            accounts=set(selected) if accounts else None,
        )
        done = [o.decision for o in outcomes if o.ok and o.decision.status is Status.REJECTED]
        for account in sorted({d.account for d in done}):
            app.notifier.decisions_rejected(
                account, [d for d in done if d.account == account], by=actor
            )
        _report(app, outcomes, as_json, "rejected")


@click.command("export")
@common_options
@accounts_option
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="Decisions created on or after this date (configured timezone; default: all).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write here instead of stdout.",
)
@pass_state
def export_command(
    state: CliState,
    config_path: Path | None,
    now_text: str | None,
    accounts: tuple[str, ...],
    since: datetime | None,
    fmt: str,
    out: Path | None,
) -> None:
    """Decisions, orders and fills, with holding period and realised gain per exit."""
    with open_app(state, config_path, now_text) as app:
        selected = select_accounts(app, accounts)
        rows = Exporter(app.store, app.tz).rows(
            since=since.replace(tzinfo=app.tz) if since else None,
            accounts=set(selected) if accounts else None,
        )
        write = write_csv if fmt == "csv" else write_jsonl
        if out is None:
            write(rows, sys.stdout)
            return
        try:
            with out.open("w", encoding="utf-8", newline="") as stream:
                write(rows, stream)
        except OSError as exc:
            raise RebalancerdError(f"{out}: cannot write: {exc.strerror or exc}") from None
        click.echo(f"{len(rows)} rows written to {out}", err=True)
