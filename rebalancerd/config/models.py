"""The config file's accounts: ``[accounts.NAME]``, its rule blocks and research source.

Units as in the file (SPEC §13): percentages are percent numbers (``20`` = 20%),
fractions are decimals (``0.5``). :meth:`RuleBlockConfig.to_rule_block` is the one
place that turns percent numbers into the fractions the rule engine uses.

Every model forbids unknown keys (a typo is an error) and is frozen. Validators
raise errors that name the offending key; files the config names (a simulated
portfolio, a research folder) are checked here, at load, so a bad one stops the
daemon with exit code 78 before anything runs.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from ipaddress import IPv4Address
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args

from pydantic import (
    Field,
    IPvAnyAddress,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from rebalancerd.config.base import (
    ConfigModel,
    EnvName,
    Fraction,
    Percent,
    Percent100,
    key_error,
    resolve_existing,
)
from rebalancerd.config.portfolio_file import load_sim_portfolio
from rebalancerd.config.schedule import ScheduleConfig, parse_clock, parse_weekly
from rebalancerd.domain.model import Block, Mode, RuleBlock, Source
from rebalancerd.errors import ConfigError

__all__ = [
    "AccountConfig",
    "ResearchConfig",
    "RuleBlockConfig",
    "ScheduleConfig",
    "check_account_names",
    "parse_clock",
    "parse_weekly",
]

ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
ALPACA_PAPER_URL = "https://paper-api.alpaca.markets"
ALPACA_LIVE_URL = "https://api.alpaca.markets"

_HUNDRED = Decimal(100)
_UNTIL = re.compile(r"^until:(\d{4}-\d{2}-\d{2})$")


# ---------------------------------------------------------------- rule blocks


class RuleBlockConfig(ConfigModel):
    """Thresholds of the Saturday review (``weekly``) or the 16:30 guards (``daily``).

    Percent numbers; an absent threshold switches its rule off in this block.
    """

    profit_take_pct: Percent | None = None
    profit_take_fraction: Fraction = Decimal("0.5")
    loss_cut_pct: Percent100 | None = None
    stop_loss_pct: Percent100 | None = None
    stop_buffer_pct: Percent100 | None = None
    stale_days: Annotated[int, Field(gt=0)] | None = None
    stale_move_pct: Percent | None = None
    max_position_pct: Percent100 | None = None
    concentration_target_pct: Percent100 | None = None

    @model_validator(mode="after")
    def _cross_fields(self) -> Self:
        if (
            self.loss_cut_pct is not None
            and self.stop_loss_pct is not None
            and self.loss_cut_pct >= self.stop_loss_pct
        ):
            raise key_error(
                "loss_cut_pct",
                f"loss_cut_pct ({self.loss_cut_pct}) must be below stop_loss_pct "
                f"({self.stop_loss_pct}): the loss cut has to fire before the stop",
            )
        target = self.concentration_target_pct
        if target is not None:
            if self.max_position_pct is None:
                raise key_error(
                    "concentration_target_pct",
                    "concentration_target_pct needs max_position_pct in the same block",
                )
            if target > self.max_position_pct:
                raise key_error(
                    "concentration_target_pct",
                    f"concentration_target_pct ({target}) must not exceed "
                    f"max_position_pct ({self.max_position_pct})",
                )
        return self

    def effective_stop_loss_pct(self, account_stop_loss_pct: Decimal | None) -> Decimal | None:
        """The block's stop, else the account's (percent)."""
        return self.stop_loss_pct if self.stop_loss_pct is not None else account_stop_loss_pct

    def to_rule_block(
        self, block: Block, account_stop_loss_pct: Decimal | None = None
    ) -> RuleBlock:
        """The rule engine's view: percents as fractions (20 → 0.2), target defaulted."""

        def frac(value: Decimal | None) -> Decimal | None:
            return None if value is None else value / _HUNDRED

        target = self.concentration_target_pct or self.max_position_pct
        return RuleBlock(
            block=Block(block),
            profit_take_pct=frac(self.profit_take_pct),
            profit_take_fraction=self.profit_take_fraction,
            loss_cut_pct=frac(self.loss_cut_pct),
            stop_loss_pct=frac(self.effective_stop_loss_pct(account_stop_loss_pct)),
            stop_buffer_pct=frac(self.stop_buffer_pct),
            stale_days=self.stale_days,
            stale_move_pct=frac(self.stale_move_pct),
            max_position_pct=frac(self.max_position_pct),
            concentration_target_pct=frac(target),
        )


# ---------------------------------------------------------------- research


_PROVIDER_KEYS: dict[str, tuple[str, ...]] = {
    "path": ("folder",),
    "pattern": ("folder",),
    "command": ("command",),
    "timeout_seconds": ("command", "anthropic"),
    "model": ("anthropic",),
    "prompt_template": ("anthropic",),
    "api_key_env": ("anthropic",),
}


class ResearchConfig(ConfigModel):
    """Where the week's research report comes from (SPEC §6)."""

    provider: Literal["folder", "command", "anthropic"]
    path: Path | None = None
    pattern: Annotated[str, StringConstraints(min_length=1)] = "*.md"
    max_age_days: Annotated[int, Field(gt=0)] = 7
    command: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] | None = None
    timeout_seconds: Annotated[int, Field(gt=0)] = 300
    model: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] | None = None
    prompt_template: str | None = None
    api_key_env: EnvName = "ANTHROPIC_API_KEY"
    write_context: Path | None = None

    @field_validator("path")
    @classmethod
    def _folder_exists(cls, value: Path | None) -> Path | None:
        return None if value is None else resolve_existing(value, directory=True)

    @model_validator(mode="after")
    def _provider_keys(self) -> Self:
        required = {"folder": "path", "command": "command", "anthropic": "model"}[self.provider]
        if getattr(self, required) is None:
            raise key_error(required, f'required when provider = "{self.provider}"')
        for key, providers in _PROVIDER_KEYS.items():
            if key in self.model_fields_set and self.provider not in providers:
                wanted = " or ".join(f'"{p}"' for p in providers)
                raise key_error(key, f"applies to provider = {wanted} only")
        return self


# ---------------------------------------------------------------- accounts


class AccountConfig(ConfigModel):
    """One ``[accounts.NAME]`` table. Percent numbers as in the file."""

    broker: Literal["sim", "alpaca"] = "sim"
    sim_portfolio: Path | None = None
    live: StrictBool = False
    mode: Mode = Mode.WEEKLY
    max_exits_per_week: Annotated[int, Field(ge=0)] = 5
    cap_sources: list[Source] = Field(default_factory=lambda: [Source.WEEKLY_REVIEW])
    approval: str = "never"
    stop_loss_pct: Percent100 | None = None
    research_can_veto: StrictBool = True
    key_env: EnvName = "APCA_API_KEY_ID"
    secret_env: EnvName = "APCA_API_SECRET_KEY"
    base_url: str | None = None
    weekly: RuleBlockConfig | None = None
    daily: RuleBlockConfig | None = None
    research: ResearchConfig | None = None

    @field_validator("mode", mode="before")
    @classmethod
    def _mode_any_case(cls, value: object) -> object:
        """``REBALANCING_MODE=Weekly`` means weekly, as ``approval`` and log levels do."""
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("sim_portfolio")
    @classmethod
    def _portfolio_file(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        path = resolve_existing(value, directory=False)
        try:
            load_sim_portfolio(path)
        except ConfigError as exc:
            raise PydanticCustomError("sim_portfolio", "{detail}", {"detail": str(exc)}) from None
        except ValueError as exc:  # UnicodeDecodeError: not a text file
            raise PydanticCustomError(
                "sim_portfolio", "{detail}", {"detail": f"{path}: not UTF-8 JSON ({exc})"}
            ) from None
        return path

    @field_validator("approval")
    @classmethod
    def _approval(cls, value: str) -> str:
        text = value.strip().lower()
        if text in ("always", "never"):
            return text
        match = _UNTIL.match(text)
        if match is None:
            raise ValueError(f'{value!r}: use "always", "never" or "until:YYYY-MM-DD"')
        try:
            date.fromisoformat(match[1])
        except ValueError:
            raise ValueError(f"{value!r}: {match[1]} is not a date") from None
        return text

    @field_validator("cap_sources")
    @classmethod
    def _unique_sources(cls, value: list[Source]) -> list[Source]:
        return list(dict.fromkeys(value))

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if re.match(r"^https?://[^\s/]+", value.strip()) is None:
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.strip().rstrip("/")

    @model_validator(mode="after")
    def _broker_keys(self) -> Self:
        if self.broker == "sim":
            if self.sim_portfolio is None:
                raise key_error("sim_portfolio", 'required when broker = "sim"')
            if self.live:
                raise key_error("live", 'live = true needs broker = "alpaca"')
            if self.base_url is not None:
                raise key_error("base_url", 'applies to broker = "alpaca" only')
        elif self.sim_portfolio is not None:
            raise key_error("sim_portfolio", 'applies to broker = "sim" only')
        for name in ("weekly", "daily"):
            block: RuleBlockConfig | None = getattr(self, name)
            if block is None or block.loss_cut_pct is None or block.stop_loss_pct is not None:
                continue
            if self.stop_loss_pct is not None and block.loss_cut_pct >= self.stop_loss_pct:
                raise key_error(
                    f"{name}.loss_cut_pct",
                    f"loss_cut_pct ({block.loss_cut_pct}) must be below the account's "
                    f"stop_loss_pct ({self.stop_loss_pct}): the loss cut has to fire first",
                )
        return self

    @property
    def approval_until(self) -> date | None:
        """The last day (inclusive) of manual approval for ``until:DATE``."""
        match = _UNTIL.match(self.approval)
        return date.fromisoformat(match[1]) if match else None

    def needs_approval(self, created_on: date) -> bool:
        """Whether a decision created on ``created_on`` (market-local) waits for approval."""
        if self.approval == "always":
            return True
        until = self.approval_until
        return until is not None and created_on <= until

    def block_config(self, block: Block | str) -> RuleBlockConfig | None:
        return self.weekly if Block(block) is Block.WEEKLY else self.daily

    def rule_block(self, block: Block | str) -> RuleBlock | None:
        """The block's thresholds as fractions for the rule engine; None without a block."""
        config = self.block_config(block)
        return None if config is None else config.to_rule_block(Block(block), self.stop_loss_pct)

    @property
    def alpaca_base_url(self) -> str:
        """The endpoint: ``base_url`` if set, else live or paper by ``live``."""
        if self.base_url is not None:
            return self.base_url
        return ALPACA_LIVE_URL if self.live else ALPACA_PAPER_URL


def check_account_names(value: Any) -> Any:
    """Account names become log fields, CLI arguments and ids: keep them plain."""
    if isinstance(value, dict):
        for name in value:
            if not isinstance(name, str) or ACCOUNT_NAME.match(name) is None:
                raise key_error(
                    str(name),
                    "invalid account name: 1–32 letters, digits, '-' or '_', "
                    "starting with a letter or digit",
                )
    return value


# ---------------------------------------------------------------- daemon


class DaemonConfig(ConfigModel):
    """``[daemon]``: how ``rebalancerd run`` behaves (not what it decides)."""

    #: Port of /healthz and /metrics; absent = no HTTP listener.
    health_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    #: Address the listener binds: loopback by default; "0.0.0.0" inside a
    #: container, whose port is then published on the host's loopback only.
    health_host: IPvAnyAddress = IPv4Address("127.0.0.1")
    #: How often the order dispatcher looks for due approved decisions while open.
    dispatch_interval_seconds: Annotated[int, Field(ge=10, le=3600)] = 300
    #: How late a job may still start after its fire time (APScheduler's grace).
    misfire_grace_seconds: Annotated[int, Field(ge=1, le=86400)] = 900
    #: How often the daemon proves it is alive (heartbeat file, systemd watchdog).
    heartbeat_seconds: Annotated[int, Field(ge=1, le=3600)] = 30


# ---------------------------------------------------------------- notifications

#: Event types a webhook can be sent for (``[notifications] events``).
NotifyEvent = Literal[
    "approval_pending",
    "exit_executed",
    "exit_rejected",
    "job_failed",
    "run_missed",
    "report_rejected",
    "daemon_started",
    "daemon_stopped",
]


class NotificationsConfig(ConfigModel):
    """``[notifications]``: a webhook (JSON POST, Slack-compatible ``text``); off by default.

    The URL embeds a token, so it is a secret: the file names the environment
    variable that holds it (``webhook_url_env``), never the URL itself.
    """

    webhook_url_env: EnvName | None = None
    events: list[NotifyEvent] = Field(default_factory=lambda: list(get_args(NotifyEvent)))
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0
    retries: Annotated[int, Field(ge=0, le=10)] = 3
    backoff_seconds: Annotated[float, Field(ge=0, le=60)] = 1.0
