"""What ``rebalancerd check-config`` prints: the resolved config, secrets masked.

The output is plain JSON-able data: Decimals and dates as strings, paths as
absolute strings, absent thresholds as ``null`` (rule off). Secrets appear only
as ``"set"`` / ``"not set"``; the database URL's password as ``***``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rebalancerd.config.database_url import mask_database_url
from rebalancerd.domain.model import Block

if TYPE_CHECKING:
    from rebalancerd.config.models import AccountConfig
    from rebalancerd.config.settings import Settings


def _status(settings: Settings, name: str) -> str:
    return "set" if settings.secret(name) is not None else "not set"


def _rule_block_fractions(config: AccountConfig, block: Block) -> dict[str, Any] | None:
    rb = config.rule_block(block)
    if rb is None:
        return None
    return {
        name: (str(value) if isinstance(value, Decimal) else value)
        for name, value in (
            ("profit_take_pct", rb.profit_take_pct),
            ("profit_take_fraction", rb.profit_take_fraction),
            ("loss_cut_pct", rb.loss_cut_pct),
            ("stop_loss_pct", rb.stop_loss_pct),
            ("stop_buffer_pct", rb.stop_buffer_pct),
            ("stale_days", rb.stale_days),
            ("stale_move_pct", rb.stale_move_pct),
            ("max_position_pct", rb.max_position_pct),
            ("concentration_target_pct", rb.concentration_target_pct),
        )
    }


def _account(settings: Settings, config: AccountConfig) -> dict[str, Any]:
    data: dict[str, Any] = config.model_dump(mode="json")
    data["paper"] = not config.live
    # The thresholds as the rule engine sees them: fractions, stop and target resolved.
    data["rules"] = {
        block.value: _rule_block_fractions(config, block) for block in (Block.WEEKLY, Block.DAILY)
    }
    if config.broker == "alpaca":
        data["endpoint"] = config.alpaca_base_url
        data["credentials"] = {
            config.key_env: _status(settings, config.key_env),
            config.secret_env: _status(settings, config.secret_env),
        }
    if config.research is not None and config.research.provider == "anthropic":
        env = config.research.api_key_env
        data["research"]["credentials"] = {env: _status(settings, env)}
    return data


def _notifications(settings: Settings) -> dict[str, Any]:
    """The webhook settings; the URL itself is a secret: only whether it is set."""
    data = settings.notifications.model_dump(mode="json")
    env = settings.notifications.webhook_url_env
    if env is not None:
        data["webhook_url"] = _status(settings, env)
    return data


def effective_config(settings: Settings) -> dict[str, Any]:
    """The fully resolved config as plain data, with the overrides applied and listed."""
    return {
        "source": None if settings.config_path is None else str(settings.config_path),
        "env_file": None if settings.env_file is None else str(settings.env_file),
        "enabled": settings.enabled,
        "dry_run": settings.dry_run,
        "timezone": settings.timezone,
        "database_url": mask_database_url(settings.database_url),
        "log_level": settings.log_level,
        "log_format": settings.log_format,
        "fill_timeout_seconds": settings.fill_timeout_seconds,
        "schedule": settings.schedule.model_dump(mode="json"),
        "daemon": settings.daemon.model_dump(mode="json"),
        "notifications": _notifications(settings),
        "accounts": {
            name: _account(settings, config) for name, config in settings.accounts.items()
        },
        "overrides": dict(settings.overrides),
        "override_targets": {k: list(v) for k, v in settings.override_targets.items()},
        "overrides_not_applied": list(settings.overrides_unused),
        "warnings": config_warnings(settings),
    }


def _account_warnings(settings: Settings, name: str, config: AccountConfig) -> list[str]:
    out: list[str] = []
    where = f"accounts.{name}"
    if config.mode.has_weekly_review and config.weekly is None and config.research is None:
        out.append(f"{where}: mode {config.mode.value!r} has no [weekly] block or research")
    if config.mode.has_daily_guard and config.daily is None:
        out.append(f"{where}: mode {config.mode.value!r} has no [daily] block: guards do nothing")
    if config.weekly is not None and not config.mode.has_weekly_review:
        out.append(f"{where}.weekly: unused in mode {config.mode.value!r}")
    if config.daily is not None and not config.mode.has_daily_guard:
        out.append(f"{where}.daily: unused in mode {config.mode.value!r}")
    for block in (Block.WEEKLY, Block.DAILY):
        rules = config.block_config(block)
        if rules is None:
            continue
        fields = rules.model_fields_set
        if "stale_move_pct" in fields and rules.stale_days is None:
            out.append(f"{where}.{block.value}.stale_move_pct: no effect without stale_days")
        if "profit_take_fraction" in fields and rules.profit_take_pct is None:
            out.append(
                f"{where}.{block.value}.profit_take_fraction: no effect without profit_take_pct"
            )
        if (
            rules.stop_buffer_pct is not None
            and rules.effective_stop_loss_pct(config.stop_loss_pct) is None
        ):
            out.append(
                f"{where}.{block.value}.stop_buffer_pct: no stop_loss_pct, so stop_approach "
                "only sees stop orders open at the broker"
            )
    if config.broker == "alpaca":
        for env in (config.key_env, config.secret_env):
            if settings.secret(env) is None:
                out.append(f"{where}: {env} is not set")
    if config.live:
        out.append(f"{where}: LIVE account (real money) at {config.alpaca_base_url}")
    return out


def config_warnings(settings: Settings) -> list[str]:
    """Valid but probably unintended settings, for ``check-config`` and the start-up log."""
    out: list[str] = []
    if not settings.enabled:
        out.append("enabled = false: jobs record decisions as skipped, nothing is sent")
    if settings.dry_run:
        out.append("dry_run = true: jobs record what they would do, nothing is sent")
    if not settings.accounts:
        out.append("no accounts configured: the daemon has nothing to do")
    for name, config in settings.accounts.items():
        out.extend(_account_warnings(settings, name, config))
    out.extend(
        f"{var} is set but no account or rule block has its key: not applied"
        for var in settings.overrides_unused
    )
    return out
