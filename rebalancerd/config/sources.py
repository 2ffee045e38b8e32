"""Where settings values come from, and remembering where each one came from.

:func:`rebalancerd.config.settings.load_settings` builds a :class:`LoadContext`
(config file, environment, ``.env`` values) and makes it current while the
``Settings`` model is built; ``Settings.settings_customise_sources`` reads it to
stack the sources, highest priority first:

1. :class:`ProposalEnvSource` — the proposal's variables (``ENABLE_AUTO_REBALANCING``,
   ``REBALANCING_*``) mapped onto every account / every rule block that sets the key;
2. :class:`RestrictedEnvSource` — ``REBALANCERD_*`` variables of the real environment;
3. :class:`RestrictedDotEnvSource` — the same names from the ``.env`` file;
4. the TOML config file.

Every value an environment source contributes is recorded in the context with
the variable it came from, so a validation error names the variable instead of
the config key, and ``check-config`` can show which overrides were applied.
Nothing here runs at import time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic.fields import FieldInfo
from pydantic_settings import (
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
)

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

#: Top-level fields that ``REBALANCERD_<FIELD>`` may set, and nothing else (a
#: stray ``REBALANCERD_ACCOUNTS`` must not inject accounts).
ENV_PREFIX = "REBALANCERD_"
ENV_FIELDS: tuple[str, ...] = ("dry_run", "database_url", "log_level", "log_format")

#: The proposal's master switch.
MASTER_SWITCH = "ENABLE_AUTO_REBALANCING"
#: Proposal variables that override an account-level key in every account.
ACCOUNT_OVERRIDES: dict[str, str] = {
    "REBALANCING_MODE": "mode",
    "REBALANCING_MAX_EXITS_PER_WEEK": "max_exits_per_week",
}
#: Proposal variables that override a rule-block key wherever the file sets it.
BLOCK_OVERRIDES: dict[str, str] = {
    "REBALANCING_PROFIT_THRESHOLD": "profit_take_pct",
    "REBALANCING_LOSS_THRESHOLD": "loss_cut_pct",
    "REBALANCING_STALE_DAYS": "stale_days",
    "REBALANCING_MAX_POSITION_SIZE": "max_position_pct",
}
BLOCK_NAMES: tuple[str, ...] = ("weekly", "daily")
PROPOSAL_VARIABLES: tuple[str, ...] = (MASTER_SWITCH, *ACCOUNT_OVERRIDES, *BLOCK_OVERRIDES)

Loc = tuple[str, ...]


@dataclass(frozen=True)
class Origin:
    """An environment variable that supplied a value, and the ``.env`` file if from one."""

    variable: str
    env_file: Path | None = None


@dataclass
class LoadContext:
    """Everything one ``load_settings`` call reads, plus what it learns on the way."""

    config_path: Path
    label: str
    environ: Mapping[str, str]
    dotenv: Mapping[str, str]
    env_file: Path | None
    #: Value location (e.g. ``("accounts", "dee-bot", "mode")``) → variable that set it.
    origins: dict[Loc, Origin] = field(default_factory=dict)
    #: Variable → raw value, for every override that reached at least one key.
    applied: dict[str, str] = field(default_factory=dict)
    #: Variable → the config keys it replaced (dotted).
    targets: dict[str, list[str]] = field(default_factory=dict)

    @property
    def config_dir(self) -> Path:
        return self.config_path.parent

    def lookup(self, name: str) -> tuple[str, Origin] | None:
        """A variable's value: the real environment wins, then ``.env``; empty is unset."""
        value = self.environ.get(name)
        if value is not None and value.strip():
            return value.strip(), Origin(name)
        value = self.dotenv.get(name)
        if value is not None and value.strip():
            return value.strip(), Origin(name, self.env_file)
        return None

    def record(self, loc: Loc, origin: Origin, value: str) -> None:
        if loc in self.origins:  # a higher-priority source already supplied it
            return
        self.origins[loc] = origin
        self.applied.setdefault(origin.variable, value)
        self.targets.setdefault(origin.variable, []).append(".".join(loc))


_CURRENT: ContextVar[LoadContext | None] = ContextVar("rebalancerd_config_load", default=None)


def current_context() -> LoadContext | None:
    """The load in progress, if any (validators use it to resolve relative paths)."""
    return _CURRENT.get()


@contextmanager
def loading(ctx: LoadContext) -> Iterator[LoadContext]:
    token = _CURRENT.set(ctx)
    try:
        yield ctx
    finally:
        _CURRENT.reset(token)


class _RestrictedEnvMixin:
    """Only ``REBALANCERD_<field>`` for the fields in :data:`ENV_FIELDS` are read."""

    ctx: LoadContext
    _from_file: Path | None = None

    def _values(self) -> Mapping[str, str]:
        raise NotImplementedError

    def _restricted(self) -> dict[str, str | None]:
        wanted = {f"{ENV_PREFIX}{name}".upper() for name in ENV_FIELDS}
        return {
            name.lower(): value
            for name, value in self._values().items()
            if name.upper() in wanted and value.strip()
        }

    def _note(self, data: dict[str, Any]) -> dict[str, Any]:
        for name in ENV_FIELDS:
            if name in data:
                var = f"{ENV_PREFIX}{name.upper()}"
                self.ctx.record((name,), Origin(var, self._from_file), str(data[name]))
        return data


class RestrictedEnvSource(_RestrictedEnvMixin, EnvSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], ctx: LoadContext):
        self.ctx = ctx
        super().__init__(
            settings_cls, case_sensitive=False, env_prefix=ENV_PREFIX, env_ignore_empty=True
        )

    def _values(self) -> Mapping[str, str]:
        return self.ctx.environ

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return self._restricted()

    def __call__(self) -> dict[str, Any]:
        return self._note(super().__call__())


class RestrictedDotEnvSource(_RestrictedEnvMixin, DotEnvSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], ctx: LoadContext):
        self.ctx = ctx
        self._from_file = ctx.env_file
        super().__init__(
            settings_cls,
            env_file=ctx.env_file,
            case_sensitive=False,
            env_prefix=ENV_PREFIX,
            env_ignore_empty=True,
        )

    def _values(self) -> Mapping[str, str]:
        return self.ctx.dotenv

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return self._restricted()

    def __call__(self) -> dict[str, Any]:
        return self._note(super().__call__())


class ProposalEnvSource(PydanticBaseSettingsSource):
    """The proposal's ``.env`` variables as overrides of the config file (SPEC §8, §14).

    ``REBALANCING_MODE`` and ``REBALANCING_MAX_EXITS_PER_WEEK`` replace the key in
    every account; the threshold variables replace the key in every rule block
    that sets it, and a block without the key stays without it (the rule stays
    off). The values are strings; the models validate them like file values.
    """

    def __init__(
        self, settings_cls: type[BaseSettings], ctx: LoadContext, file_data: Mapping[str, Any]
    ):
        super().__init__(settings_cls)
        self.ctx = ctx
        self.file_data = file_data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        # Unused: __call__ builds the whole override tree at once.
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        found = self.ctx.lookup(MASTER_SWITCH)
        if found is not None:
            out["enabled"] = found[0]
            self.ctx.record(("enabled",), found[1], found[0])
        accounts = self.file_data.get("accounts")
        if not isinstance(accounts, Mapping):
            return out
        for name, table in accounts.items():
            if not isinstance(table, Mapping):
                continue
            account = self._account_overrides(str(name), table)
            if account:
                out.setdefault("accounts", {})[name] = account
        return out

    def _account_overrides(self, name: str, table: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for var, key in ACCOUNT_OVERRIDES.items():
            found = self.ctx.lookup(var)
            if found is not None:
                result[key] = found[0]
                self.ctx.record(("accounts", name, key), found[1], found[0])
        for block in BLOCK_NAMES:
            rules = table.get(block)
            if not isinstance(rules, Mapping):
                continue
            for var, key in BLOCK_OVERRIDES.items():
                found = self.ctx.lookup(var)
                if found is not None and key in rules:
                    result.setdefault(block, {})[key] = found[0]
                    self.ctx.record(("accounts", name, block, key), found[1], found[0])
        return result
