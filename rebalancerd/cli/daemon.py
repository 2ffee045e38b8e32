"""``rebalancerd run | schedule | healthcheck``: the daemon's commands."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from rebalancerd.adapters.calendar import NyseCalendar
from rebalancerd.cli.common import common_options, json_option
from rebalancerd.cli.context import CliState, make_clock, parse_now, pass_state
from rebalancerd.cli.output import console, dump_json, table
from rebalancerd.config.settings import Settings
from rebalancerd.logs import configure_logging


@click.command("run")
@common_options
@click.option("--wait", is_flag=True, help="Wait for another daemon to release the database.")
@pass_state
def run(state: CliState, config_path: Path | None, now_text: str | None, wait: bool) -> None:
    """Run the daemon: scheduled reviews, guards, execution and dispatch until SIGTERM.

    --now starts the daemon's clock at that time and lets it run on (replays, tests).
    """
    from rebalancerd.daemon.runner import Daemon, RunOptions

    settings = state.settings(config_path)
    offset = timedelta(0)
    text = now_text or state.now_text or os.environ.get("REBALANCERD_NOW")
    if text:
        offset = parse_now(text, settings.tz) - datetime.now(UTC)

    def relog(new: Settings) -> None:
        """The daemon logs JSON lines to stdout (journald, docker logs); a terminal
        gets the console renderer. --log-level/--log-format win over the file."""
        tty = sys.stdout.isatty()
        fmt = state.log_format or ("console" if tty else new.log_format)
        configure_logging(state.log_level or new.log_level, fmt, stream=sys.stdout)

    relog(settings)
    daemon = Daemon(settings, RunOptions(wait=wait, offset=offset), on_settings=relog)
    sys.exit(daemon.run())


@click.command("schedule")
@common_options
@click.option("--days", type=click.IntRange(1, 366), default=14, show_default=True)
@json_option
@pass_state
def schedule(
    state: CliState, config_path: Path | None, now_text: str | None, days: int, as_json: bool
) -> None:
    """Next fire times per job, with the holiday when a day is skipped or moved."""
    from rebalancerd.daemon.plan import build_triggers, upcoming

    settings = state.settings(config_path)
    tz = settings.tz
    start = make_clock(now_text or state.now_text, tz).now()
    triggers = build_triggers(settings, NyseCalendar(settings.schedule.extra_closures))
    entries = upcoming(triggers, start, days)
    rows: list[dict[str, Any]] = [
        {
            "job": e.job,
            "date": e.day.isoformat(),
            "at": e.at.astimezone(tz).isoformat() if e.at else None,
            "note": e.note,
        }
        for e in entries
    ]
    if as_json:
        click.echo(dump_json(rows))
        return
    body = [
        (
            e.day.strftime("%a %Y-%m-%d"),
            f"{e.at.astimezone(tz):%H:%M}" if e.at else "-",
            e.job,
            e.note or "",
        )
        for e in entries
    ]
    title = f"schedule from {start.astimezone(tz):%Y-%m-%d %H:%M} {tz.key}, {days} days"
    console().print(table(title, ["day", "time", "job", "note"], body))


@click.command("healthcheck")
@common_options
@pass_state
def healthcheck(state: CliState, config_path: Path | None, now_text: str | None) -> None:
    """Exit 0 when the daemon for this config is alive, 1 otherwise (Docker HEALTHCHECK)."""
    from rebalancerd.daemon.healthcheck import check_health

    ok, why = check_health(state.settings(config_path))
    click.echo(why, err=not ok)
    sys.exit(0 if ok else 1)


COMMANDS = (run, schedule, healthcheck)
