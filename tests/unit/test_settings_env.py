"""Environment and ``.env``: the config path, overrides (SPEC §14), secrets, check-config."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

import pytest

from rebalancerd.config.settings import Settings, effective_config, load_settings
from rebalancerd.domain.model import Mode
from rebalancerd.errors import ConfigError
from tests.unit.test_settings import account, write_config

# Two accounts: "a" sets every threshold in weekly, daily sets only loss_cut;
# "b" has only a weekly block without profit_take/loss_cut.
TWO_ACCOUNTS = (
    account(
        "stop_loss_pct = 15\nmax_exits_per_week = 3",
        weekly=(
            "profit_take_pct = 20\nstale_days = 21\nstale_move_pct = 5\n"
            "max_position_pct = 15\nstop_buffer_pct = 5"
        ),
        daily="loss_cut_pct = 12",
        name="a",
    )
    + '[accounts.b]\nsim_portfolio = "portfolio.json"\nmode = "hybrid"\n'
    + "[accounts.b.weekly]\nstale_days = 14\nmax_position_pct = 20\n"
)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, TWO_ACCOUNTS)


def load(path: Path, environ: dict[str, str], env_file: Path | None = None) -> Settings:
    return load_settings(path, environ=environ, env_file=env_file)


# ---------------------------------------------------------------- config path


def test_config_from_environment(config: Path) -> None:
    s = load_settings(environ={"REBALANCERD_CONFIG": str(config)}, env_file=None)
    assert s.config_path == config


def test_config_from_dotenv(config: Path, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"REBALANCERD_CONFIG={config}\n", encoding="utf-8")
    assert load_settings(environ={}, env_file=env_file).config_path == config


def test_explicit_path_beats_environment(config: Path, tmp_path: Path) -> None:
    other = tmp_path / "missing.toml"
    s = load_settings(config, environ={"REBALANCERD_CONFIG": str(other)}, env_file=None)
    assert s.config_path == config


def test_no_config_anywhere() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={}, env_file=None)
    assert str(info.value) == "no config file: pass --config or set REBALANCERD_CONFIG"
    assert info.value.exit_code == 78


def test_default_environ_is_os_environ(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_AUTO_REBALANCING", "false")
    before = dict(os.environ)
    assert load_settings(config, env_file=None).enabled is False
    assert dict(os.environ) == before  # read, never written


def test_direct_construction_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_AUTO_REBALANCING", "false")
    monkeypatch.setenv("REBALANCERD_DRY_RUN", "true")
    s = Settings()
    assert s.enabled is True and s.dry_run is False


# ---------------------------------------------------------------- switches


@pytest.mark.parametrize(
    ("value", "expected"), [("false", False), ("FALSE", False), ("0", False), ("true", True)]
)
def test_master_switch(config: Path, value: str, expected: bool) -> None:
    s = load(config, {"ENABLE_AUTO_REBALANCING": value})
    assert s.enabled is expected
    assert s.overrides["ENABLE_AUTO_REBALANCING"] == value


def test_master_switch_invalid_names_the_variable(config: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(config, {"ENABLE_AUTO_REBALANCING": "maybe"})
    assert str(info.value).startswith("ENABLE_AUTO_REBALANCING: Input should be a valid boolean")


def test_dry_run_from_environment(config: Path) -> None:
    assert load(config, {"REBALANCERD_DRY_RUN": "true"}).dry_run is True
    assert load(config, {}).dry_run is False


def test_log_settings_from_environment(config: Path) -> None:
    s = load(config, {"REBALANCERD_LOG_LEVEL": "DEBUG", "REBALANCERD_LOG_FORMAT": "console"})
    assert (s.log_level, s.log_format) == ("debug", "console")


def test_database_url_from_environment_is_normalised_and_masked(config: Path) -> None:
    s = load(config, {"REBALANCERD_DATABASE_URL": "postgres://bot:hunter2pw@db/reb"})
    assert s.database_url == "postgresql+psycopg://bot:hunter2pw@db/reb"
    dumped = json.dumps(effective_config(s))
    assert "hunter2pw" not in dumped
    assert effective_config(s)["database_url"] == "postgresql+psycopg://bot:***@db/reb"
    assert s.overrides["REBALANCERD_DATABASE_URL"] == "postgresql+psycopg://bot:***@db/reb"


@pytest.mark.parametrize(
    "url", ["nonsense://", "postgresql+asyncpg://bot:hunter2pw@db/x", "mysql://bot:hunter2pw@h/x"]
)
def test_bad_database_url_from_environment(config: Path, url: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(config, {"REBALANCERD_DATABASE_URL": url})
    assert str(info.value).startswith("REBALANCERD_DATABASE_URL: ")
    assert "hunter2pw" not in str(info.value)
    assert info.value.exit_code == 78


def test_other_rebalancerd_variables_cannot_inject_config(config: Path) -> None:
    s = load(config, {"REBALANCERD_ACCOUNTS": '{"x": {}}', "REBALANCERD_TIMEZONE": "UTC"})
    assert set(s.accounts) == {"a", "b"}
    assert s.timezone == "America/New_York"


# ---------------------------------------------------------------- REBALANCING_* overrides


def test_mode_overrides_every_account(config: Path) -> None:
    s = load(config, {"REBALANCING_MODE": "daily"})
    assert {a.mode for a in s.accounts.values()} == {Mode.DAILY}
    assert s.overrides == {"REBALANCING_MODE": "daily"}
    assert s.override_targets["REBALANCING_MODE"] == ("accounts.a.mode", "accounts.b.mode")


def test_max_exits_overrides_every_account(config: Path) -> None:
    s = load(config, {"REBALANCING_MAX_EXITS_PER_WEEK": "1"})
    assert [a.max_exits_per_week for a in s.accounts.values()] == [1, 1]


@pytest.mark.parametrize(
    ("var", "key", "value", "where_set", "where_unset"),
    [
        (
            "REBALANCING_PROFIT_THRESHOLD",
            "profit_take_pct",
            "25",
            [("a", "weekly")],
            [("a", "daily"), ("b", "weekly")],
        ),
        (
            "REBALANCING_LOSS_THRESHOLD",
            "loss_cut_pct",
            "10",
            [("a", "daily")],
            [("a", "weekly"), ("b", "weekly")],
        ),
        (
            "REBALANCING_STALE_DAYS",
            "stale_days",
            "30",
            [("a", "weekly"), ("b", "weekly")],
            [("a", "daily")],
        ),
        (
            "REBALANCING_MAX_POSITION_SIZE",
            "max_position_pct",
            "12",
            [("a", "weekly"), ("b", "weekly")],
            [("a", "daily")],
        ),
    ],
)
def test_threshold_override_only_where_set(
    config: Path,
    var: str,
    key: str,
    value: str,
    where_set: list[tuple[str, str]],
    where_unset: list[tuple[str, str]],
) -> None:
    s = load(config, {var: value})
    for name, block in where_set:
        rules = s.accounts[name].block_config(block)
        assert rules is not None
        assert Decimal(getattr(rules, key)) == Decimal(value)
    for name, block in where_unset:
        rules = s.accounts[name].block_config(block)
        assert rules is not None
        assert getattr(rules, key) is None, (name, block)
    assert s.overrides[var] == value
    assert s.override_targets[var] == tuple(f"accounts.{n}.{b}.{key}" for n, b in where_set)
    shown = effective_config(s)
    assert shown["overrides"][var] == value
    assert shown["accounts"]["a"]["mode"] == "weekly"


def test_override_matching_nothing_is_reported_not_applied(tmp_path: Path) -> None:
    path = write_config(tmp_path, account(weekly="stale_days = 14"))
    s = load(path, {"REBALANCING_PROFIT_THRESHOLD": "30"})
    weekly = s.accounts["acct"].weekly
    assert weekly is not None and weekly.profit_take_pct is None
    assert "REBALANCING_PROFIT_THRESHOLD" not in s.overrides
    assert s.overrides_unused == ("REBALANCING_PROFIT_THRESHOLD",)
    shown = effective_config(s)
    assert shown["overrides_not_applied"] == ["REBALANCING_PROFIT_THRESHOLD"]
    assert any("REBALANCING_PROFIT_THRESHOLD" in w for w in shown["warnings"])


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"REBALANCING_MODE": "bogus"},
            "REBALANCING_MODE: Input should be 'off', 'weekly', 'daily' or 'hybrid'",
        ),
        (
            {"REBALANCING_MAX_EXITS_PER_WEEK": "-1"},
            "REBALANCING_MAX_EXITS_PER_WEEK: Input should be greater than or equal to 0",
        ),
        (
            {"REBALANCING_MAX_EXITS_PER_WEEK": "two"},
            "REBALANCING_MAX_EXITS_PER_WEEK: Input should be a valid integer",
        ),
        (
            {"REBALANCING_PROFIT_THRESHOLD": "abc"},
            "REBALANCING_PROFIT_THRESHOLD: Input should be a valid decimal",
        ),
        (
            {"REBALANCING_PROFIT_THRESHOLD": "-5"},
            "REBALANCING_PROFIT_THRESHOLD: Input should be greater than 0",
        ),
        ({"REBALANCING_STALE_DAYS": "0"}, "REBALANCING_STALE_DAYS: Input should be greater than 0"),
        (
            {"REBALANCING_MAX_POSITION_SIZE": "150"},
            "REBALANCING_MAX_POSITION_SIZE: Input should be less than or equal to 100",
        ),
        # SPEC §2 cross-field check with an overridden value: loss cut at or beyond the stop.
        (
            {"REBALANCING_LOSS_THRESHOLD": "15"},
            "REBALANCING_LOSS_THRESHOLD: loss_cut_pct (15) must be below",
        ),
    ],
)
def test_invalid_override_names_the_variable(
    config: Path, environ: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(config, environ)
    assert str(info.value).startswith(expected), str(info.value)
    assert "(and" not in str(info.value)  # the same variable in two accounts is one problem
    assert info.value.exit_code == 78


def test_cross_check_mentions_the_override_that_broke_it(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, account(weekly="max_position_pct = 15\nconcentration_target_pct = 12")
    )
    with pytest.raises(ConfigError) as info:
        load(path, {"REBALANCING_MAX_POSITION_SIZE": "10"})
    message = str(info.value)
    assert message.startswith(
        f"{path}: accounts.acct.weekly.concentration_target_pct: concentration_target_pct (12)"
    )
    assert "REBALANCING_MAX_POSITION_SIZE=10 applied" in message


def test_empty_values_count_as_unset(config: Path) -> None:
    s = load(config, {"REBALANCING_MODE": "", "ENABLE_AUTO_REBALANCING": " "})
    assert s.enabled is True and s.overrides == {}


# ---------------------------------------------------------------- .env


def test_dotenv_used_and_real_environment_wins(config: Path, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\n"
        "ENABLE_AUTO_REBALANCING=false  # master switch\n"
        "REBALANCING_MODE=daily\n"
        "REBALANCING_MAX_EXITS_PER_WEEK=4\n"
        "REBALANCERD_DRY_RUN=true\n"
        "UNRELATED_THING=1\n",
        encoding="utf-8",
    )
    s = load(config, {"REBALANCING_MODE": "hybrid", "REBALANCERD_DRY_RUN": "false"}, env_file)
    assert s.enabled is False  # from .env
    assert s.accounts["a"].max_exits_per_week == 4  # from .env
    assert s.accounts["a"].mode is Mode.HYBRID  # real environment wins
    assert s.dry_run is False  # real environment wins
    assert s.env_file == env_file
    assert s.overrides["REBALANCING_MODE"] == "hybrid"


def test_invalid_dotenv_value_names_file_and_variable(config: Path, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("REBALANCING_STALE_DAYS=soon\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load(config, {}, env_file)
    assert str(info.value).startswith(f"{env_file}: REBALANCING_STALE_DAYS: ")


def test_missing_dotenv_is_ignored(config: Path, tmp_path: Path) -> None:
    assert load(config, {}, tmp_path / "nope.env").env_file is None


# ---------------------------------------------------------------- secrets


ALPACA = (
    '[accounts.live-bot]\nbroker = "alpaca"\nlive = true\n'
    '[accounts.paper-bot]\nbroker = "alpaca"\nkey_env = "PAPER_KEY"\nsecret_env = "PAPER_SECRET"\n'
    '[accounts.paper-bot.research]\nprovider = "anthropic"\nmodel = "m"\n'
)
KEY_ID = "PKTESTKEYID0123456789"
SECRET = "sEcReT-value-that-must-never-show-9876"


def test_secrets_from_environment_and_dotenv(tmp_path: Path) -> None:
    path = write_config(tmp_path, ALPACA)
    env_file = tmp_path / ".env"
    env_file.write_text(f"APCA_API_SECRET_KEY={SECRET}\nPAPER_KEY=from-dotenv\n", encoding="utf-8")
    s = load(path, {"APCA_API_KEY_ID": KEY_ID, "PAPER_KEY": "from-env"}, env_file)
    key, secret = s.credentials("live-bot")
    assert key is not None and key.get_secret_value() == KEY_ID
    assert secret is not None and secret.get_secret_value() == SECRET
    paper_key = s.secret("PAPER_KEY")
    assert paper_key is not None and paper_key.get_secret_value() == "from-env"
    assert s.secret("PAPER_SECRET") is None
    assert SECRET not in repr(s) and SECRET not in str(s.secrets) and KEY_ID not in repr(s)


def test_effective_config_masks_every_secret(tmp_path: Path) -> None:
    path = write_config(tmp_path, ALPACA)
    environ = {
        "APCA_API_KEY_ID": KEY_ID,
        "APCA_API_SECRET_KEY": SECRET,
        "ANTHROPIC_API_KEY": SECRET + "-anthropic",
        "REBALANCERD_DATABASE_URL": f"postgresql://bot:{SECRET}@db/x?sslpassword={SECRET}",
    }
    shown = effective_config(load(path, environ))
    dumped = json.dumps(shown)  # plain JSON, no default= needed
    assert SECRET not in dumped
    assert KEY_ID not in dumped
    assert KEY_ID[-4:] not in dumped
    live = shown["accounts"]["live-bot"]
    assert live["credentials"] == {"APCA_API_KEY_ID": "set", "APCA_API_SECRET_KEY": "set"}
    assert live["endpoint"] == "https://api.alpaca.markets"
    assert live["paper"] is False
    paper = shown["accounts"]["paper-bot"]
    assert paper["credentials"] == {"PAPER_KEY": "not set", "PAPER_SECRET": "not set"}
    assert paper["research"]["credentials"] == {"ANTHROPIC_API_KEY": "set"}
    assert any("PAPER_KEY is not set" in w for w in shown["warnings"])
    assert shown["source"] == str(path)


def test_secret_in_the_config_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = write_config(tmp_path, f'[accounts.x]\nbroker = "alpaca"\napi_secret_key = "{SECRET}"\n')
    with pytest.raises(ConfigError) as info:
        load(path, {})
    assert "accounts.x.api_secret_key: unknown key" in str(info.value)
    assert SECRET not in str(info.value)


def test_effective_config_is_plain_data(config: Path) -> None:
    shown = effective_config(load(config, {"REBALANCING_MODE": "hybrid"}))
    assert json.loads(json.dumps(shown)) == shown
    assert shown["accounts"]["a"]["weekly"]["profit_take_pct"] == "20"
    assert shown["accounts"]["a"]["rules"]["weekly"]["profit_take_pct"] == "0.2"
    assert shown["accounts"]["a"]["rules"]["weekly"]["stale_days"] == 21
    assert shown["accounts"]["a"]["weekly"]["loss_cut_pct"] is None  # absent = off
    assert shown["overrides"] == {"REBALANCING_MODE": "hybrid"}
    assert shown["schedule"]["execution"] == "mon 09:30"


def test_mode_override_is_case_insensitive(tmp_path: Path) -> None:
    from tests.unit.test_settings import account, load

    settings = load(tmp_path, account('mode = "daily"'), environ={"REBALANCING_MODE": "Hybrid"})
    assert settings.accounts["acct"].mode.value == "hybrid"
