"""Research commands: the context handed to the research generator, and a
report checker an operator can run before dropping a report in the folder."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from rebalancerd.cli.common import common_options, open_app, select_accounts
from rebalancerd.cli.context import CliState, pass_state
from rebalancerd.cli.output import dump_json
from rebalancerd.domain.report_parser import ReportError, parse_report
from rebalancerd.errors import UsageError
from rebalancerd.services.context_render import render_context_json, render_context_markdown
from rebalancerd.services.research_context import build_context


@click.command("context")
@common_options
@click.option("--account", "account", required=True, metavar="NAME")
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True)
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Write here, not stdout."
)
@pass_state
def context_command(
    state: CliState,
    config_path: Path | None,
    now_text: str | None,
    account: str,
    fmt: str,
    out: Path | None,
) -> None:
    """The portfolio context for the research generator (Markdown or JSON)."""
    with open_app(state, config_path, now_text) as app:
        (name,) = select_accounts(app, (account,))
        ctx = app.account(name)
        built = build_context(ctx, app.store, app.clock.now())
        text = (
            render_context_markdown(built) if fmt == "md" else dump_json(render_context_json(built))
        )
    if out is None:
        click.echo(text)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--out {out}: {exc.strerror}") from None


@click.command("check-report")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--date",
    "report_date",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Date the report was written (resolves 'Nov 15'); default: today.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def check_report(path: Path, report_date: object, as_json: bool) -> None:
    """Parse a research report as the review would; exit 1 naming the line if unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    day = report_date.date() if hasattr(report_date, "date") else date.today()  # noqa: DTZ011
    try:
        parsed = parse_report(text, report_date=day, source=str(path))
    except ReportError as exc:
        raise ReportRejected(str(exc)) from None
    if as_json:
        click.echo(dump_json([r.as_dict() for r in parsed.recommendations]))
        return
    if not parsed.has_rebalancing_section:
        click.echo(f"{path}: no PORTFOLIO REBALANCING section: no recommendations")
    for r in parsed.recommendations:
        click.echo(f"line {r.line}: {r.symbol} {r.describe()} - {r.reason}")


class ReportRejected(click.ClickException):
    """A report the parser refuses: exit 1 with the parser's line-numbered message."""

    exit_code = 1

    def show(self, file: object = None) -> None:
        click.echo(f"rebalancerd: error: {self.message}", err=True)
