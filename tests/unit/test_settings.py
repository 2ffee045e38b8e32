"""Config loading and validation: schema, SPEC §2 checks, files the config names."""

from __future__ import annotations

import json
import textwrap
from datetime import date, time
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rebalancerd.config.settings import (
    AccountConfig,
    RuleBlockConfig,
    Settings,
    load_settings,
    reload_settings,
)
from rebalancerd.domain.model import Block, Mode, RuleBlock, Source
from rebalancerd.errors import ConfigError

PORTFOLIO = {
    "cash": "1000.00",
    "positions": [
        {"symbol": "AMD", "qty": "10", "avg_entry_price": "100.00", "current_price": "120.00"}
    ],
}


def write_config(tmp_path: Path, text: str, name: str = "rebalancerd.toml") -> Path:
    """A config file plus a valid ``portfolio.json`` beside it; returns the config path."""
    (tmp_path / "portfolio.json").write_text(json.dumps(PORTFOLIO), encoding="utf-8")
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def account(
    lines: str = "",
    *,
    weekly: str | None = None,
    daily: str | None = None,
    research: str | None = None,
    top: str = "",
    name: str = "acct",
) -> str:
    """TOML for one sim account (portfolio.json) with optional blocks."""
    parts = [top, f"[accounts.{name}]", 'sim_portfolio = "portfolio.json"', lines]
    for block, body in (("weekly", weekly), ("daily", daily), ("research", research)):
        if body is not None:
            parts += [f"[accounts.{name}.{block}]", body]
    return "\n".join(parts) + "\n"


def load(tmp_path: Path, text: str, **kw: object) -> Settings:
    path = write_config(tmp_path, text)
    kw.setdefault("environ", {})
    kw.setdefault("env_file", None)
    return load_settings(path, **kw)  # type: ignore[arg-type]


def refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> ConfigError:
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(Path("rebalancerd.toml"), environ={}, env_file=None)
    return info.value


# ---------------------------------------------------------------- happy path


def test_minimal_config_gets_the_documented_defaults(tmp_path: Path) -> None:
    s = load(tmp_path, "")
    assert s.enabled is True
    assert s.dry_run is False
    assert s.timezone == "America/New_York"
    assert s.database_url == "sqlite:///var/rebalancerd.db"
    assert (s.log_level, s.log_format) == ("info", "json")
    assert s.schedule.weekly_review == "sat 12:00"
    assert s.schedule.daily_guard == "16:30"
    assert s.schedule.execution == "mon 09:30"
    assert s.accounts == {}
    assert s.config_path == tmp_path / "rebalancerd.toml"
    assert s.config_path.is_absolute()


def test_account_defaults(tmp_path: Path) -> None:
    a = load(tmp_path, account()).accounts["acct"]
    assert a.broker == "sim"
    assert a.live is False
    assert a.mode is Mode.WEEKLY
    assert a.max_exits_per_week == 5
    assert a.cap_sources == [Source.WEEKLY_REVIEW]
    assert a.approval == "never"
    assert a.stop_loss_pct is None
    assert a.research_can_veto is True
    assert (a.key_env, a.secret_env) == ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY")
    assert a.weekly is None and a.daily is None and a.research is None
    assert a.rule_block(Block.WEEKLY) is None
    assert a.sim_portfolio == tmp_path / "portfolio.json"


def test_settings_are_frozen(tmp_path: Path) -> None:
    s = load(tmp_path, account(weekly="profit_take_pct = 20"))
    with pytest.raises(ValueError):
        s.enabled = False  # type: ignore[misc]
    with pytest.raises(ValueError):
        s.accounts["acct"].mode = Mode.OFF  # type: ignore[misc]


def test_schedule_parsed_values(tmp_path: Path) -> None:
    text = """
    [schedule]
    weekly_review = "SUN 7:05"
    daily_guard = "16:45"
    execution = "Tue 10:00"
    extra_closures = [2026-12-24, 2026-12-24, 2026-11-27]
    """
    sched = load(tmp_path, text).schedule
    assert sched.weekly_review == "sun 07:05"
    assert sched.weekly_review_at == (6, time(7, 5))
    assert sched.daily_guard_at == time(16, 45)
    assert sched.execution_at == (1, time(10, 0))
    assert sched.extra_closures == [date(2026, 11, 27), date(2026, 12, 24)]


@pytest.mark.parametrize(
    ("given_url", "stored"),
    [
        ("sqlite:///var/rebalancerd.db", "sqlite:///var/rebalancerd.db"),
        ("postgresql://u:pw@db/x", "postgresql+psycopg://u:pw@db/x"),
        ("postgres://u:pw@db:5433/x", "postgresql+psycopg://u:pw@db:5433/x"),
        ("postgresql+psycopg://db/x", "postgresql+psycopg://db/x"),
    ],
)
def test_database_url_normalised(tmp_path: Path, given_url: str, stored: str) -> None:
    assert load(tmp_path, f'database_url = "{given_url}"\n').database_url == stored


def test_block_stop_overrides_account_stop(tmp_path: Path) -> None:
    # loss_cut 12 < the block's stop 15, although the account's stop is 10: valid.
    text = account(
        "stop_loss_pct = 10",
        daily="loss_cut_pct = 12\nstop_loss_pct = 15",
        weekly="stop_buffer_pct = 5",
    )
    a = load(tmp_path, text).accounts["acct"]
    assert a.rule_block(Block.DAILY) == RuleBlock(
        block=Block.DAILY, loss_cut_pct=Decimal("0.12"), stop_loss_pct=Decimal("0.15")
    )
    weekly = a.rule_block("weekly")
    assert weekly is not None and weekly.stop_loss_pct == Decimal("0.1")


def test_to_rule_block_converts_percent_numbers_to_fractions() -> None:
    cfg = RuleBlockConfig(
        profit_take_pct=Decimal("20"),
        profit_take_fraction=Decimal("0.25"),
        loss_cut_pct=Decimal("12.5"),
        stop_buffer_pct=Decimal("5"),
        stale_days=21,
        stale_move_pct=Decimal("5"),
        max_position_pct=Decimal("15"),
        concentration_target_pct=Decimal("12"),
    )
    rb = cfg.to_rule_block(Block.WEEKLY, Decimal("15"))
    assert rb == RuleBlock(
        block=Block.WEEKLY,
        profit_take_pct=Decimal("0.2"),
        profit_take_fraction=Decimal("0.25"),
        loss_cut_pct=Decimal("0.125"),
        stop_loss_pct=Decimal("0.15"),
        stop_buffer_pct=Decimal("0.05"),
        stale_days=21,
        stale_move_pct=Decimal("0.05"),
        max_position_pct=Decimal("0.15"),
        concentration_target_pct=Decimal("0.12"),
    )
    assert rb.profit_level == "weekly:20"


def test_concentration_target_defaults_to_max() -> None:
    rb = RuleBlockConfig(max_position_pct=Decimal("20")).to_rule_block(Block.DAILY, None)
    assert rb.concentration_target_pct == rb.max_position_pct == Decimal("0.2")


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100), places=2))
def test_percent_round_trip(pct: Decimal) -> None:
    rb = RuleBlockConfig(max_position_pct=pct, loss_cut_pct=pct).to_rule_block(Block.WEEKLY)
    assert rb.max_position_pct is not None and rb.max_position_pct * 100 == pct
    assert rb.loss_cut_pct == pct / 100


def test_toml_floats_become_exact_decimals(tmp_path: Path) -> None:
    text = account(weekly="profit_take_pct = 20.1\nprofit_take_fraction = 0.3")
    weekly = load(tmp_path, text).accounts["acct"].weekly
    assert weekly is not None
    assert weekly.profit_take_pct == Decimal("20.1")
    assert weekly.profit_take_fraction == Decimal("0.3")


# ---------------------------------------------------------------- approval


@pytest.mark.parametrize(
    ("approval", "day", "expected"),
    [
        ("never", date(2026, 12, 1), False),
        ("always", date(2030, 1, 1), True),
        ("until:2026-12-07", date(2026, 12, 6), True),
        ("until:2026-12-07", date(2026, 12, 7), True),  # inclusive
        ("until:2026-12-07", date(2026, 12, 8), False),
        ("UNTIL:2026-12-07", date(2026, 12, 7), True),
    ],
)
def test_needs_approval(tmp_path: Path, approval: str, day: date, expected: bool) -> None:
    a = load(tmp_path, account(f'approval = "{approval}"')).accounts["acct"]
    assert a.needs_approval(day) is expected


def test_approval_until_exposes_the_date(tmp_path: Path) -> None:
    a = load(tmp_path, account('approval = "until:2026-12-07"')).accounts["acct"]
    assert a.approval == "until:2026-12-07"
    assert a.approval_until == date(2026, 12, 7)


# ---------------------------------------------------------------- refusals, key named

REFUSALS: list[tuple[str, str, str, str]] = [
    # (id, config text, key named, message fragment)
    # top level
    ("unknown-top", "colour = 1\n", "colour", "unknown key"),
    ("secret-in-file", 'api_key = "x"\n', "api_key", "unknown key"),
    ("timezone", 'timezone = "Mars/Olympus"\n', "timezone", "unknown time zone"),
    ("db-malformed", 'database_url = "not a url"\n', "database_url", "not a database URL"),
    ("db-dialect", 'database_url = "mysql://u@h/d"\n', "database_url", "unsupported database"),
    ("db-driver", 'database_url = "postgresql+psycopg2://h/d"\n', "database_url", "driver"),
    ("db-memory", 'database_url = "sqlite://"\n', "database_url", "in-memory"),
    ("db-memory-named", 'database_url = "sqlite:///:memory:"\n', "database_url", "in-memory"),
    ("log-level", 'log_level = "verbose"\n', "log_level", "Input should be"),
    ("log-format", 'log_format = "xml"\n', "log_format", "Input should be"),
    ("enabled-type", 'enabled = "perhaps"\n', "enabled", "valid boolean"),
    # schedule
    ("sched-unknown", "[schedule]\nweekly = 'sat 12:00'\n", "schedule.weekly", "unknown key"),
    (
        "sched-day",
        "[schedule]\nweekly_review = 'saturday 12:00'\n",
        "schedule.weekly_review",
        "ddd HH:MM",
    ),
    ("sched-hour", "[schedule]\nweekly_review = 'sat 24:00'\n", "schedule.weekly_review", "HH:MM"),
    ("sched-daily", "[schedule]\ndaily_guard = '4:30pm'\n", "schedule.daily_guard", "HH:MM"),
    ("sched-exec-day", "[schedule]\nexecution = 'sat 09:30'\n", "schedule.execution", "weekday"),
    ("sched-exec-time", "[schedule]\nexecution = 'mon 08:00'\n", "schedule.execution", "09:30"),
    (
        "sched-closure",
        "[schedule]\nextra_closures = ['soon']\n",
        "schedule.extra_closures.0",
        "date",
    ),
    # account
    (
        "acct-unknown",
        account("max_exit_per_week = 3"),
        "accounts.acct.max_exit_per_week",
        "unknown key",
    ),
    ("acct-secret", account('secret_key = "abc"'), "accounts.acct.secret_key", "unknown key"),
    ("acct-name", account(name='"bad name"'), "accounts.bad name", "invalid account name"),
    ("acct-broker", account('broker = "ibkr"'), "accounts.acct.broker", "Input should be"),
    (
        "acct-mode",
        account('mode = "monthly"'),
        "accounts.acct.mode",
        "'off', 'weekly', 'daily' or 'hybrid'",
    ),
    (
        "acct-cap-neg",
        account("max_exits_per_week = -1"),
        "accounts.acct.max_exits_per_week",
        "greater than or equal to 0",
    ),
    (
        "acct-cap-frac",
        account("max_exits_per_week = 2.5"),
        "accounts.acct.max_exits_per_week",
        "integer",
    ),
    (
        "acct-cap-src",
        account('cap_sources = ["weekly"]'),
        "accounts.acct.cap_sources.0",
        "weekly_review",
    ),
    (
        "acct-approval",
        account('approval = "sometimes"'),
        "accounts.acct.approval",
        "until:YYYY-MM-DD",
    ),
    (
        "acct-approval-date",
        account('approval = "until:2026-13-01"'),
        "accounts.acct.approval",
        "not a date",
    ),
    (
        "acct-stop-zero",
        account("stop_loss_pct = 0"),
        "accounts.acct.stop_loss_pct",
        "greater than 0",
    ),
    (
        "acct-stop-big",
        account("stop_loss_pct = 150"),
        "accounts.acct.stop_loss_pct",
        "less than or equal to 100",
    ),
    ("acct-live-sim", account("live = true"), "accounts.acct.live", 'broker = "alpaca"'),
    ("acct-live-str", account('live = "yes"'), "accounts.acct.live", "valid boolean"),
    ("acct-key-env", account('key_env = "1BAD"'), "accounts.acct.key_env", "pattern"),
    (
        "acct-base-url-sim",
        account('base_url = "http://localhost:8080"'),
        "accounts.acct.base_url",
        "alpaca",
    ),
    (
        "acct-alpaca-portfolio",
        account('broker = "alpaca"'),
        "accounts.acct.sim_portfolio",
        'broker = "sim" only',
    ),
    (
        "acct-alpaca-url",
        '[accounts.a]\nbroker = "alpaca"\nbase_url = "ftp://x"\n',
        "accounts.a.base_url",
        "http(s) URL",
    ),
    (
        "acct-no-portfolio",
        "[accounts.a]\nmode = 'weekly'\n",
        "accounts.a.sim_portfolio",
        'required when broker = "sim"',
    ),
    # rule blocks (SPEC §2)
    (
        "blk-unknown",
        account(weekly="profit_tkae_pct = 20"),
        "accounts.acct.weekly.profit_tkae_pct",
        "unknown key",
    ),
    (
        "blk-profit-neg",
        account(weekly="profit_take_pct = -5"),
        "accounts.acct.weekly.profit_take_pct",
        "greater than 0",
    ),
    (
        "blk-profit-zero",
        account(weekly="profit_take_pct = 0"),
        "accounts.acct.weekly.profit_take_pct",
        "greater than 0",
    ),
    (
        "blk-fraction-0",
        account(weekly="profit_take_fraction = 0"),
        "accounts.acct.weekly.profit_take_fraction",
        "greater than 0",
    ),
    (
        "blk-fraction-big",
        account(weekly="profit_take_fraction = 1.5"),
        "accounts.acct.weekly.profit_take_fraction",
        "less than or equal to 1",
    ),
    (
        "blk-stale-days",
        account(daily="stale_days = 0"),
        "accounts.acct.daily.stale_days",
        "greater than 0",
    ),
    (
        "blk-stale-move",
        account(daily="stale_move_pct = 0"),
        "accounts.acct.daily.stale_move_pct",
        "greater than 0",
    ),
    (
        "blk-buffer",
        account(weekly="stop_buffer_pct = -1"),
        "accounts.acct.weekly.stop_buffer_pct",
        "greater than 0",
    ),
    (
        "blk-max-big",
        account(weekly="max_position_pct = 150"),
        "accounts.acct.weekly.max_position_pct",
        "less than or equal to 100",
    ),
    (
        "blk-loss-vs-block-stop",
        account(daily="loss_cut_pct = 15\nstop_loss_pct = 15"),
        "accounts.acct.daily.loss_cut_pct",
        "must be below stop_loss_pct",
    ),
    (
        "blk-loss-vs-account-stop",
        account("stop_loss_pct = 10", daily="loss_cut_pct = 12"),
        "accounts.acct.daily.loss_cut_pct",
        "must be below the account's stop_loss_pct (10)",
    ),
    (
        "blk-target-above-max",
        account(weekly="max_position_pct = 15\nconcentration_target_pct = 16"),
        "accounts.acct.weekly.concentration_target_pct",
        "must not exceed max_position_pct (15)",
    ),
    (
        "blk-target-without-max",
        account(weekly="concentration_target_pct = 10"),
        "accounts.acct.weekly.concentration_target_pct",
        "needs max_position_pct",
    ),
    ("blk-not-table", account("weekly = 5"), "accounts.acct.weekly", "RuleBlockConfig"),
    # research
    (
        "res-provider",
        account(research='provider = "email"'),
        "accounts.acct.research.provider",
        "Input should be",
    ),
    (
        "res-folder-path",
        account(research='provider = "folder"'),
        "accounts.acct.research.path",
        'required when provider = "folder"',
    ),
    (
        "res-folder-missing",
        account(research='provider = "folder"\npath = "no-such-dir"'),
        "accounts.acct.research.path",
        "directory not found",
    ),
    (
        "res-folder-is-file",
        account(research='provider = "folder"\npath = "portfolio.json"'),
        "accounts.acct.research.path",
        "not a directory",
    ),
    (
        "res-command",
        account(research='provider = "command"'),
        "accounts.acct.research.command",
        "required",
    ),
    (
        "res-anthropic",
        account(research='provider = "anthropic"'),
        "accounts.acct.research.model",
        "required",
    ),
    (
        "res-wrong-provider-key",
        account(research='provider = "command"\ncommand = "gen"\npath = "."'),
        "accounts.acct.research.path",
        'provider = "folder" only',
    ),
    (
        "res-unknown",
        account(research='provider = "command"\ncommand = "gen"\napi_key = "k"'),
        "accounts.acct.research.api_key",
        "unknown key",
    ),
]


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
def test_refused_with_key_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, key: str, fragment: str
) -> None:
    err = refused(tmp_path, monkeypatch, text)
    message = str(err)
    assert message.startswith(f"rebalancerd.toml: {key}: "), message
    assert fragment in message
    assert "\n" not in message
    assert err.exit_code == 78


def test_refusal_counts_further_problems_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    err = refused(tmp_path, monkeypatch, account('mode = "x"\nmax_exits_per_week = -1'))
    assert str(err).endswith("(and 1 more problem)")


# ---------------------------------------------------------------- files


def test_missing_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_settings(Path("config/x.toml"), environ={}, env_file=None)
    assert str(info.value) == "config/x.toml: file not found"
    assert info.value.exit_code == 78


def test_config_path_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a regular file"):
        load_settings(tmp_path, environ={}, env_file=None)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("enabled = true\ndry_run = \n", 2),
        ("enabled = true\nenabled = false\n", 2),
        ("[schedule]\n\n\n[schedule]\n", 4),
        ('[accounts.a]\nsim_portfolio = "portfolio.json"\nmode = "weekly" x\n', 3),
    ],
)
def test_bad_toml_names_the_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, line: int
) -> None:
    err = refused(tmp_path, monkeypatch, text)
    assert str(err).startswith(f"rebalancerd.toml: line {line}: "), str(err)
    assert "(column " in str(err)


def test_config_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(b"enabled = true\n# \xff\xfe\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={}, env_file=None)
    assert str(info.value) == f"{path}: not UTF-8 text"


def test_sim_portfolio_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = '[accounts.a]\nsim_portfolio = "nowhere.json"\n'
    err = refused(tmp_path, monkeypatch, text)
    assert str(err).startswith("rebalancerd.toml: accounts.a.sim_portfolio: file not found: ")
    assert "nowhere.json" in str(err)
    assert err.exit_code == 78


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "invalid JSON at line 1"),
        (
            '{"cash": "1", "positions": [{"symbol": "A", "qty": "x", "avg_entry_price": "1"}]}',
            "positions.0.qty",
        ),
        ('{"positions": []}', "cash"),
        ("[1, 2]", "(root)"),
        (
            '{"cash": "1", "positions": [{"symbol": "dup", "qty": "1", "avg_entry_price": "1"},'
            ' {"symbol": "DUP", "qty": "2", "avg_entry_price": "1"}]}',
            "DUP is listed twice",
        ),
    ],
)
def test_sim_portfolio_invalid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, fragment: str
) -> None:
    (tmp_path / "broken.json").write_text(content, encoding="utf-8")
    err = refused(tmp_path, monkeypatch, '[accounts.a]\nsim_portfolio = "broken.json"\n')
    message = str(err)
    assert message.startswith("rebalancerd.toml: accounts.a.sim_portfolio: "), message
    assert "broken.json" in message and fragment in message
    assert "\n" not in message


def test_sim_portfolio_binary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    err = refused(tmp_path, monkeypatch, '[accounts.a]\nsim_portfolio = "bin.json"\n')
    assert str(err).startswith("rebalancerd.toml: accounts.a.sim_portfolio: ")


def test_sim_portfolio_resolved_against_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "etc"
    conf.mkdir()
    path = write_config(conf, account())
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    a = load_settings(path, environ={}, env_file=None).accounts["acct"]
    assert a.sim_portfolio == conf / "portfolio.json"


def test_sim_portfolio_cwd_wins_over_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "etc"
    conf.mkdir()
    path = write_config(conf, account())
    (tmp_path / "portfolio.json").write_text(json.dumps(PORTFOLIO), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    a = load_settings(path, environ={}, env_file=None).accounts["acct"]
    assert a.sim_portfolio == tmp_path / "portfolio.json"


def test_absolute_sim_portfolio(tmp_path: Path) -> None:
    target = tmp_path / "portfolio.json"
    s = load(tmp_path, f'[accounts.a]\nsim_portfolio = "{target}"\n')
    assert s.accounts["a"].sim_portfolio == target


def test_research_folder_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "research").mkdir()
    monkeypatch.chdir(tmp_path)
    text = account(research='provider = "folder"\npath = "research"\npattern = "*dee*.md"')
    research = load(tmp_path, text).accounts["acct"].research
    assert research is not None
    assert research.path == tmp_path / "research"
    assert (research.pattern, research.max_age_days) == ("*dee*.md", 7)


def test_research_command_and_anthropic_accepted(tmp_path: Path) -> None:
    cmd = load(tmp_path, account(research='provider = "command"\ncommand = "gen --x"'))
    assert cmd.accounts["acct"].research is not None
    text = account(research='provider = "anthropic"\nmodel = "m"\napi_key_env = "MY_KEY"')
    research = load(tmp_path, text).accounts["acct"].research
    assert research is not None and research.api_key_env == "MY_KEY"


def test_alpaca_account_needs_no_portfolio(tmp_path: Path) -> None:
    text = '[accounts.live-one]\nbroker = "alpaca"\nlive = true\nkey_env = "K"\nsecret_env = "S"\n'
    a = load(tmp_path, text).accounts["live-one"]
    assert a.live is True and a.sim_portfolio is None
    assert a.alpaca_base_url == "https://api.alpaca.markets"
    paper = load(tmp_path, '[accounts.p]\nbroker = "alpaca"\n').accounts["p"]
    assert paper.alpaca_base_url == "https://paper-api.alpaca.markets"
    proxied = load(tmp_path, '[accounts.p]\nbroker = "alpaca"\nbase_url = "http://localhost:9/"\n')
    assert proxied.accounts["p"].alpaca_base_url == "http://localhost:9"


# ---------------------------------------------------------------- direct use, reload


def test_models_usable_without_a_file(tmp_path: Path) -> None:
    # Services' tests build configs directly; no load context, no env, no file.
    (tmp_path / "p.json").write_text(json.dumps(PORTFOLIO), encoding="utf-8")
    a = AccountConfig(broker="sim", sim_portfolio=tmp_path / "p.json", mode=Mode.HYBRID)
    assert a.mode is Mode.HYBRID
    s = Settings.model_validate({"accounts": {"x": a.model_dump()}})
    assert s.accounts["x"].sim_portfolio == tmp_path / "p.json"
    assert s.config_path is None


def test_reload_reads_the_same_file(tmp_path: Path) -> None:
    first = load(tmp_path, account("max_exits_per_week = 3"))
    path = tmp_path / "rebalancerd.toml"
    path.write_text(account("max_exits_per_week = 1"), encoding="utf-8")
    second = reload_settings(first, environ={})
    assert second.accounts["acct"].max_exits_per_week == 1
    assert first.accounts["acct"].max_exits_per_week == 3
    path.write_text(account("max_exits_per_week = -2"), encoding="utf-8")
    with pytest.raises(ConfigError, match="max_exits_per_week"):
        reload_settings(first, environ={})


def test_health_listener_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    default = load(tmp_path, account())
    assert (default.daemon.health_port, str(default.daemon.health_host)) == (None, "127.0.0.1")
    container = load(tmp_path, account(top='[daemon]\nhealth_port = 9464\nhealth_host = "0.0.0.0"'))
    assert str(container.daemon.health_host) == "0.0.0.0"
    err = refused(tmp_path, monkeypatch, account(top='[daemon]\nhealth_host = "localhost"'))
    assert str(err).startswith("rebalancerd.toml: daemon.health_host: ")
