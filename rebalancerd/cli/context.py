"""Per-invocation CLI state: which config, which clock, logging set-up."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from rebalancerd.adapters.clock import FixedClock, SystemClock
from rebalancerd.composition import App, build_app
from rebalancerd.config.settings import Settings, load_settings
from rebalancerd.errors import UsageError
from rebalancerd.logs import configure_logging
from rebalancerd.ports import Clock


@dataclass
class CliState:
    config_path: Path | None = None
    now_text: str | None = None
    log_level: str | None = None
    log_format: str | None = None
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self, config_path: Path | None = None) -> Settings:
        if self._settings is None:
            self._configure_logging(None)
            self._settings = load_settings(config_path or self.config_path)
            self._configure_logging(self._settings)
        return self._settings

    def _configure_logging(self, settings: Settings | None) -> None:
        level = self.log_level or (settings.log_level if settings else "warning")
        fmt = self.log_format
        if fmt is None:
            # An operator at a terminal reads console lines; pipes and journald get JSON.
            fmt = (
                "console" if sys.stderr.isatty() else (settings.log_format if settings else "json")
            )
        configure_logging(level, fmt)


pass_state = click.make_pass_decorator(CliState, ensure=True)


def parse_now(text: str, tz: ZoneInfo) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--now: not an ISO 8601 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=tz)


def make_clock(now_text: str | None, tz: ZoneInfo) -> Clock:
    text = now_text or os.environ.get("REBALANCERD_NOW")
    return FixedClock(parse_now(text, tz)) if text else SystemClock()


def load_app(state: CliState, config_path: Path | None, now_text: str | None, **kw: Any) -> App:
    settings = state.settings(config_path)
    clock = make_clock(now_text or state.now_text, ZoneInfo(settings.timezone))
    return build_app(settings, clock=clock, **kw)
