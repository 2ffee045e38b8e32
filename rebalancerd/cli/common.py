"""Options and helpers shared by every command module."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from rebalancerd.cli.context import CliState, load_app
from rebalancerd.composition import App
from rebalancerd.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])


def common_options(func: F) -> F:
    """Options every subcommand accepts (also accepted before the subcommand)."""
    func = click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path),
        help="Config file (default: $REBALANCERD_CONFIG).",
    )(func)
    func = click.option(
        "--now",
        "now_text",
        metavar="ISO",
        help="Pretend it is this time (ISO 8601; naive = configured timezone; for replays).",
    )(func)
    return func


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(func)


def accounts_option(func: F) -> F:
    return click.option(
        "--account",
        "accounts",
        multiple=True,
        metavar="NAME",
        help="Account to act on (repeatable; default: all).",
    )(func)


@contextmanager
def open_app(state: CliState, config_path: Path | None, now_text: str | None) -> Iterator[App]:
    app = load_app(state, config_path, now_text)
    try:
        yield app
    finally:
        app.close()


def select_accounts(app: App, requested: tuple[str, ...]) -> list[str]:
    known = list(app.settings.accounts)
    unknown = [a for a in requested if a not in known]
    if unknown:
        raise UsageError(
            f"unknown account {unknown[0]!r} (configured: {', '.join(known) or 'none'})"
        )
    return list(requested) or known
