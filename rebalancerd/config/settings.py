"""Loading and validating the daemon's configuration (SPEC §8, §13, §14).

The config is a TOML file (``--config`` or ``REBALANCERD_CONFIG``); the
environment (and a ``.env`` file, whose values count only when the variable is
not in the real environment) overrides a few keys and is the only source of
secrets. :func:`load_settings` is the entry point: it returns a frozen
:class:`Settings` or raises :class:`~rebalancerd.errors.ConfigError` (exit code
78) with one line naming the file and the key, or the variable, at fault.

Nothing is read at import time; there is no module-level settings instance.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values
from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from rebalancerd.config.database_url import mask_database_url, normalize_database_url
from rebalancerd.config.diagnostics import toml_error, validation_error
from rebalancerd.config.effective import config_warnings, effective_config
from rebalancerd.config.models import (
    AccountConfig,
    DaemonConfig,
    NotificationsConfig,
    ResearchConfig,
    RuleBlockConfig,
    ScheduleConfig,
    check_account_names,
)
from rebalancerd.config.sources import (
    ENV_PREFIX,
    PROPOSAL_VARIABLES,
    LoadContext,
    ProposalEnvSource,
    RestrictedDotEnvSource,
    RestrictedEnvSource,
    current_context,
    loading,
)
from rebalancerd.errors import ConfigError

__all__ = [
    "AccountConfig",
    "ResearchConfig",
    "RuleBlockConfig",
    "ScheduleConfig",
    "Secrets",
    "Settings",
    "config_warnings",
    "effective_config",
    "load_settings",
    "mask_database_url",
    "reload_settings",
]

CONFIG_ENV = "REBALANCERD_CONFIG"
DEFAULT_SECRET_NAMES = ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "ANTHROPIC_API_KEY")


# ---------------------------------------------------------------- secrets


class Secrets:
    """Secret values from the environment or ``.env`` (never from the config file).

    Holds only the variables the config refers to (each account's ``key_env`` /
    ``secret_env``, research ``api_key_env``) and the default names. Values are
    :class:`~pydantic.SecretStr`, so printing or logging them shows ``**********``.
    """

    def __init__(self, values: Mapping[str, SecretStr]):
        self._values = dict(values)

    def get(self, name: str) -> SecretStr | None:
        return self._values.get(name)

    def is_set(self, name: str) -> bool:
        return name in self._values

    def __repr__(self) -> str:
        return f"Secrets(set={sorted(self._values)})"


# ---------------------------------------------------------------- settings


class Settings(BaseSettings):
    """The whole validated config. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        extra="forbid",
        frozen=True,
        case_sensitive=True,
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,
        validate_default=True,
    )

    enabled: bool = True
    dry_run: bool = False
    timezone: str = "America/New_York"
    database_url: str = "sqlite:///var/rebalancerd.db"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    #: How long an execution waits for its exits to fill before sizing entries.
    fill_timeout_seconds: Annotated[int, Field(ge=1, le=600)] = 30
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    accounts: dict[str, AccountConfig] = Field(default_factory=dict)

    _config_path: Path | None = PrivateAttr(default=None)
    _env_file: Path | None = PrivateAttr(default=None)
    _env_file_requested: Path | None = PrivateAttr(default=None)
    _secrets: Secrets = PrivateAttr(default_factory=lambda: Secrets({}))
    _overrides: dict[str, str] = PrivateAttr(default_factory=dict)
    _override_targets: dict[str, tuple[str, ...]] = PrivateAttr(default_factory=dict)
    _overrides_unused: tuple[str, ...] = PrivateAttr(default=())

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        ctx = current_context()
        if ctx is None:
            # Built directly (tests, tools): only what the caller passed, no file, no env.
            return (init_settings,)
        toml = TomlConfigSettingsSource(settings_cls, toml_file=ctx.config_path)
        return (
            init_settings,
            ProposalEnvSource(settings_cls, ctx, toml.toml_data),
            RestrictedEnvSource(settings_cls, ctx),
            RestrictedDotEnvSource(settings_cls, ctx),
            toml,
        )

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}: use an IANA name") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return normalize_database_url(value)

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("accounts", mode="before")
    @classmethod
    def _account_names(cls, value: Any) -> Any:
        return check_account_names(value)

    @property
    def config_path(self) -> Path | None:
        """The absolute path of the file these settings came from (SIGHUP reloads it)."""
        return self._config_path

    @property
    def env_file(self) -> Path | None:
        """The ``.env`` file consulted, when it existed."""
        return self._env_file

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def secrets(self) -> Secrets:
        return self._secrets

    def secret(self, name: str) -> SecretStr | None:
        """A secret by variable name (e.g. an account's ``key_env``); None when unset."""
        return self._secrets.get(name)

    def credentials(self, account: str) -> tuple[SecretStr | None, SecretStr | None]:
        """(key id, secret key) of an account, from its ``key_env`` / ``secret_env``."""
        config = self.accounts[account]
        return self.secret(config.key_env), self.secret(config.secret_env)

    @property
    def overrides(self) -> Mapping[str, str]:
        """Environment variables that changed the config, with their values (URLs masked)."""
        return dict(self._overrides)

    @property
    def override_targets(self) -> Mapping[str, tuple[str, ...]]:
        """Variable → the config keys it replaced (dotted paths)."""
        return dict(self._override_targets)

    @property
    def overrides_unused(self) -> tuple[str, ...]:
        """``REBALANCING_*`` variables that are set but matched no key in the file."""
        return self._overrides_unused


# ---------------------------------------------------------------- loading


def _read_dotenv(env_file: Path | None) -> tuple[dict[str, str], Path | None]:
    if env_file is None or not env_file.is_file():
        return {}, None
    try:
        raw = dotenv_values(env_file, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", source=str(env_file)) from None
    return {k: v for k, v in raw.items() if v is not None}, env_file


def _config_location(
    config_path: Path | str | None, environ: Mapping[str, str], dotenv: Mapping[str, str]
) -> Path:
    if config_path is not None and str(config_path).strip():
        return Path(config_path)
    for source in (environ, dotenv):
        value = source.get(CONFIG_ENV, "").strip()
        if value:
            return Path(value)
    raise ConfigError(f"no config file: pass --config or set {CONFIG_ENV}")


def _secret_names(settings: Settings) -> set[str]:
    names = set(DEFAULT_SECRET_NAMES)
    for account in settings.accounts.values():
        names.update((account.key_env, account.secret_env))
        if account.research is not None:
            names.add(account.research.api_key_env)
    if settings.notifications.webhook_url_env is not None:
        names.add(settings.notifications.webhook_url_env)
    return names


def load_settings(
    config_path: Path | str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = Path(".env"),
) -> Settings:
    """Read, override and validate the config; any problem is a one-line ConfigError.

    ``config_path`` defaults to ``REBALANCERD_CONFIG``; ``environ`` to ``os.environ``
    (read, never modified); ``env_file`` values count only for variables absent
    from ``environ``.
    """
    env = dict(os.environ if environ is None else environ)
    dotenv, used_env_file = _read_dotenv(env_file)
    path = _config_location(config_path, env, dotenv)
    label = str(path)
    if not path.exists():
        raise ConfigError("file not found", source=label)
    if not path.is_file():
        raise ConfigError("not a regular file", source=label)
    ctx = LoadContext(
        config_path=Path(os.path.abspath(path)),
        label=label,
        environ=env,
        dotenv=dotenv,
        env_file=used_env_file,
    )
    with loading(ctx):
        try:
            settings = Settings()
        except ValidationError as exc:
            raise validation_error(exc, ctx) from None
        except tomllib.TOMLDecodeError as exc:
            raise toml_error(exc, label) from None
        except UnicodeDecodeError:
            raise ConfigError("not UTF-8 text", source=label) from None
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror or exc}", source=label) from None

    overrides = dict(ctx.applied)
    if "REBALANCERD_DATABASE_URL" in overrides:
        overrides["REBALANCERD_DATABASE_URL"] = mask_database_url(settings.database_url)
    secrets = {}
    for name in sorted(_secret_names(settings)):
        found = ctx.lookup(name)
        if found is not None:
            secrets[name] = SecretStr(found[0])
    settings._config_path = ctx.config_path
    settings._env_file = used_env_file
    settings._env_file_requested = None if env_file is None else Path(os.path.abspath(env_file))
    settings._secrets = Secrets(secrets)
    settings._overrides = overrides
    settings._override_targets = {k: tuple(v) for k, v in ctx.targets.items()}
    settings._overrides_unused = tuple(
        var for var in PROPOSAL_VARIABLES if ctx.lookup(var) is not None and var not in ctx.applied
    )
    return settings


def reload_settings(current: Settings, *, environ: Mapping[str, str] | None = None) -> Settings:
    """Re-read the file ``current`` came from (SIGHUP); raises ConfigError if now invalid."""
    if current.config_path is None:
        raise ConfigError("these settings were not loaded from a file; nothing to reload")
    return load_settings(current.config_path, environ=environ, env_file=current._env_file_requested)
