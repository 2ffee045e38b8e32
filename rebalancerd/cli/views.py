"""Read-only views: ``decisions``, ``decision ID``, ``positions``, ``caps``, ``runs``.

Human tables by default, ``--json`` for scripts (SPEC §13 fixes the decision
fields). Every time is shown in the configured timezone. Nothing here writes
to the database except the position-record sync that reading an account does.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

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
    event_dict,
    local_time,
    order_dict,
    run_dict,
    table,
    to_jsonable,
)
from rebalancerd.composition import App
from rebalancerd.domain.model import Status
from rebalancerd.ports import DecisionFilter

_since_option = click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="Only on or after this date/time (in the configured timezone).",
)


@click.command()
@common_options
@accounts_option
@click.option("--pending", is_flag=True, help="Only decisions waiting for approval.")
@click.option("--status", "statuses", multiple=True, type=click.Choice([s.value for s in Status]))
@click.option("--symbol", default=None)
@_since_option
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Keep the newest N.")
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
    """List recorded decisions, oldest first (filters combine)."""
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
        if as_json:
            click.echo(dump_json([decision_dict(d, app.tz) for d in found]))
        elif found:
            console().print(decisions_table(found, app.tz, f"decisions ({app.settings.timezone})"))
        else:
            click.echo("decisions: none match")


@click.command("decision")
@common_options
@click.argument("decision_id", metavar="ID", type=int)
@json_option
@pass_state
def decision_command(
    state: CliState, config_path: Path | None, now_text: str | None, decision_id: int, as_json: bool
) -> None:
    """One decision's full story: inputs, reasons, status history, approvals, orders, fills."""
    with open_app(state, config_path, now_text) as app:
        data = decision_detail(app, decision_id)
        if as_json:
            click.echo(dump_json(data))
            return
        _print_detail(app, data)


def decision_detail(app: App, decision_id: int) -> dict[str, Any]:
    """The decision as JSON data with ``history``, ``approvals``, ``orders`` and ``fills``."""
    d = app.store.get_decision(decision_id)  # NotFound: exit 2
    history = [event_dict(e, app.tz) for e in app.store.decision_history(decision_id)]
    orders = app.store.orders_for_decisions([decision_id]).get(decision_id, [])
    order_rows = [order_dict(o, app.tz, at) for o, at in orders]
    data = decision_dict(d, app.tz)
    data["history"] = history
    data["approvals"] = [e for e in history if e["status"] in ("approved", "rejected", "expired")]
    data["orders"] = order_rows
    data["fills"] = [
        {
            "client_order_id": o["client_order_id"],
            "side": o["side"],
            "qty": o["filled_qty"],
            "avg_price": o["filled_avg_price"],
            "at": o["updated_at"],
        }
        for o in order_rows
        if o["filled_qty"]
    ]
    return data


def _print_detail(app: App, data: dict[str, Any]) -> None:
    tz = app.tz
    out = console()
    qty = data["qty"]
    out.print(
        f"decision {data['id']}: {data['account']} {data['action']} {qty} {data['symbol']}"
        f" — {data['status']}" + (f" ({data['skip_reason']})" if data["skip_reason"] else "")
    )
    facts = [
        ("source", data["source"]),
        ("reasons", ", ".join(data["reasons"])),
        ("why", "; ".join(data["details"])),
        ("created", local_time(datetime.fromisoformat(data["created_at"]), tz)),
        ("execute at", local_time(datetime.fromisoformat(data["execute_at"]), tz)),
        ("slot week", data["slot_week"] or "none held"),
        ("report", data["report_id"] or "none"),
    ]
    for key, value in facts:
        out.print(f"  {key:<11} {value}")
    out.print(table("inputs", ["input", "value"], sorted(data["inputs"].items())))
    out.print(
        table(
            f"history ({app.settings.timezone})",
            ["at", "status", "by", "note"],
            [(_local(e["at"], app), e["status"], e["actor"], e["note"]) for e in data["history"]],
        )
    )
    if data["orders"]:
        columns = ["client_order_id", "side", "type", "qty", "stop_price", "status"]
        rows = [
            [*(o[c] for c in columns), o["filled_qty"], o["filled_avg_price"], o["error"]]
            for o in data["orders"]
        ]
        out.print(table("orders", [*columns, "filled", "avg price", "error"], rows))
    else:
        out.print("orders: none")


def _local(text: str | None, app: App) -> str:
    return local_time(datetime.fromisoformat(text), app.tz) if text else ""


@click.command()
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
        headers = ["account", "symbol", "qty", "entry", "price", "P&L %", "weight %", "age"]
        headers += ["catalyst", "stop", "flags"]
        console().print(table("positions", headers, body))


@click.command()
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
    """Weekly exit slots used and left per account, and the decisions holding them."""
    from rebalancerd.services.views import caps_view

    with open_app(state, config_path, now_text) as app:
        data: dict[str, Any] = {}
        for name in select_accounts(app, accounts):
            ctx = app.account(name)
            current, upcoming = caps_view(ctx, app.store, app.clock.now())
            weeks = [current] if current.week_start == upcoming.week_start else [current, upcoming]

            def slots(week: Any) -> list[dict[str, Any]]:
                return [
                    {"slot": s.slot_no, "decision_id": s.decision_id, "symbol": s.symbol}
                    for s in week.slots
                ]

            data[name] = {
                "week_start": upcoming.week_start.isoformat(),
                "cap": upcoming.cap,
                "used": upcoming.used,
                "left": upcoming.left,
                "cap_sources": [s.value for s in ctx.config.cap_sources],
                "slots": slots(upcoming),
                "weeks": [
                    {
                        "week_start": w.week_start.isoformat(),
                        "used": w.used,
                        "left": w.left,
                        "slots": slots(w),
                    }
                    for w in weeks
                ],
            }
        if as_json:
            click.echo(dump_json(data))
            return
        _print_caps(app, data)


def _print_caps(app: App, data: dict[str, Any]) -> None:
    ids = {s["decision_id"] for d in data.values() for w in d["weeks"] for s in w["slots"]}
    status = {
        d.id: d.status.value
        for d in (app.store.list_decisions(DecisionFilter(ids=frozenset(ids))) if ids else [])
    }
    rows = [
        (
            name,
            w["week_start"],
            d["cap"],
            w["used"],
            w["left"],
            [
                f"{s['symbol']} #{s['decision_id']} {status.get(s['decision_id'], '')}"
                for s in w["slots"]
            ],
        )
        for name, d in data.items()
        for w in d["weeks"]
    ]
    headers = ["account", "week of", "cap", "used", "left", "held by"]
    console().print(table("weekly exit caps", headers, rows))


@click.command()
@common_options
@accounts_option
@click.option("--job", default=None, help="Only this job (weekly_review, daily_guard, execution).")
@_since_option
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@json_option
@pass_state
def runs(
    state: CliState,
    config_path: Path | None,
    now_text: str | None,
    accounts: tuple[str, ...],
    job: str | None,
    since: datetime | None,
    limit: int,
    as_json: bool,
) -> None:
    """Job runs with their outcome (succeeded, failed, missed, running), oldest first."""
    with open_app(state, config_path, now_text) as app:
        selected = select_accounts(app, accounts) if accounts else None
        found = app.store.list_runs(
            since=since.replace(tzinfo=app.tz) if since else None,
            job=job,
            limit=None if selected else limit,
        )
        if selected is not None:
            found = [r for r in found if r.account in selected][-limit:]
        rows = [run_dict(r, app.tz) for r in found]
        if as_json:
            click.echo(dump_json(rows))
            return
        if not rows:
            click.echo("runs: none recorded")
            return
        body = [
            (
                r["id"],
                r["job"],
                r["account"],
                _local(r["scheduled_at"], app),
                _local(r["started_at"], app),
                r["duration_seconds"],
                r["outcome"],
                r["error"],
            )
            for r in rows
        ]
        headers = ["id", "job", "account", "scheduled", "started", "seconds", "outcome", "error"]
        console().print(table(f"job runs ({app.settings.timezone})", headers, body))
        missed = sum(1 for r in rows if r["outcome"] == "missed")
        failed = sum(1 for r in rows if r["outcome"] == "failed")
        click.echo(f"{len(rows)} runs, {failed} failed, {missed} missed")
