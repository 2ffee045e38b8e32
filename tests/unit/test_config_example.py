"""The shipped example config, demo portfolios and .env.example stay valid and useful.

The demo portfolios are also run through the rule engine on the dates the
example's comments promise, so each rule is visibly exercised (see the
expectations below).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from rebalancerd.config.models import (
    AccountConfig,
    ResearchConfig,
    RuleBlockConfig,
    ScheduleConfig,
)
from rebalancerd.config.portfolio_file import SimPortfolioSpec, load_sim_portfolio
from rebalancerd.config.settings import Settings, effective_config, load_settings
from rebalancerd.config.sources import ENV_FIELDS, ENV_PREFIX, PROPOSAL_VARIABLES
from rebalancerd.domain.model import (
    Action,
    Block,
    Mode,
    Portfolio,
    Position,
    RuleBlock,
    Source,
)
from rebalancerd.domain.rules import evaluate_position
from rebalancerd.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "rebalancerd.example.toml"
ENV_EXAMPLE = REPO / "config" / ".env.example"

#: The Saturday of the demo's weekly review, and a Wednesday for the daily guard.
REVIEW_DAY = date(2026, 11, 28)
GUARD_DAY = date(2026, 11, 25)


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(REPO)
    return load_settings(Path("config/rebalancerd.example.toml"), environ={}, env_file=None)


def test_example_loads_from_repo_root(example: Settings) -> None:
    assert example.config_path == EXAMPLE
    assert set(example.accounts) == {"dee-bot", "shorgan-bot"}
    assert example.enabled is True and example.dry_run is False
    assert example.database_url == "sqlite:///var/rebalancerd.db"
    assert example.schedule.execution_at[0] == 0


def test_example_dee_bot(example: Settings) -> None:
    dee = example.accounts["dee-bot"]
    assert (dee.broker, dee.live, dee.mode) == ("sim", False, Mode.WEEKLY)
    assert dee.max_exits_per_week == 3
    assert dee.cap_sources == [Source.WEEKLY_REVIEW]
    assert dee.approval == "never"
    assert dee.stop_loss_pct == Decimal(15)
    assert dee.sim_portfolio == REPO / "config" / "demo-portfolio.json"
    assert dee.rule_block(Block.WEEKLY) == RuleBlock(
        block=Block.WEEKLY,
        profit_take_pct=Decimal("0.2"),
        profit_take_fraction=Decimal("0.5"),
        stop_loss_pct=Decimal("0.15"),
        stop_buffer_pct=Decimal("0.05"),
        stale_days=21,
        stale_move_pct=Decimal("0.05"),
        max_position_pct=Decimal("0.15"),
        concentration_target_pct=Decimal("0.15"),
    )
    assert dee.rule_block(Block.DAILY) is None


def test_example_shorgan_bot(example: Settings) -> None:
    shorgan = example.accounts["shorgan-bot"]
    assert (shorgan.broker, shorgan.live, shorgan.mode) == ("sim", False, Mode.HYBRID)
    assert shorgan.max_exits_per_week == 2
    assert shorgan.cap_sources == [Source.WEEKLY_REVIEW]
    assert shorgan.sim_portfolio == REPO / "config" / "demo-portfolio-shorgan.json"
    assert shorgan.rule_block(Block.WEEKLY) == RuleBlock(
        block=Block.WEEKLY,
        stop_loss_pct=Decimal("0.15"),
        stop_buffer_pct=Decimal("0.05"),
        stale_days=14,
        stale_move_pct=Decimal("0.05"),
        max_position_pct=Decimal("0.2"),
        concentration_target_pct=Decimal("0.2"),
    )
    assert shorgan.rule_block(Block.DAILY) == RuleBlock(
        block=Block.DAILY,
        profit_take_pct=Decimal("0.3"),
        profit_take_fraction=Decimal("0.5"),
        loss_cut_pct=Decimal("0.12"),
        stop_loss_pct=Decimal("0.15"),
    )


def test_example_has_no_warnings(example: Settings) -> None:
    assert effective_config(example)["warnings"] == []


@pytest.mark.parametrize(
    "model", [Settings, ScheduleConfig, AccountConfig, RuleBlockConfig, ResearchConfig]
)
def test_example_documents_every_key(model: type[Settings | AccountConfig]) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for key in model.model_fields:
        # `key = ...` (maybe commented out) or a table: [schedule], [accounts.x.weekly]
        pattern = rf"^#?\s*({key}\s*=|\[{key}[.\]]|\[accounts\.[\w-]+\.{key}\])"
        assert re.search(pattern, text, re.MULTILINE), f"{key} not in the example"


def test_example_works_from_another_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # sim_portfolio paths are relative to the repo root; from elsewhere they are
    # looked up next to the config file, where "config/..." does not exist.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_settings(EXAMPLE, environ={}, env_file=None)
    assert "accounts.dee-bot.sim_portfolio: file not found" in str(info.value)


# ---------------------------------------------------------------- .env.example


def _env_example_lines() -> dict[str, str]:
    """``NAME=value`` of every commented example line (the last one of a name wins)."""
    found: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^#\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            found[match[1]] = match[2].strip()
    return found


def test_env_example_lists_every_variable_read() -> None:
    names = set(_env_example_lines())
    expected = {
        "REBALANCERD_CONFIG",
        *PROPOSAL_VARIABLES,
        *(f"{ENV_PREFIX}{field.upper()}" for field in ENV_FIELDS),
        "APCA_API_KEY_ID",
        "APCA_API_SECRET_KEY",
        "ANTHROPIC_API_KEY",
    }
    assert expected <= names


def test_env_example_sets_nothing_as_shipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    s = load_settings(EXAMPLE, environ={}, env_file=ENV_EXAMPLE)
    assert s.overrides == {}
    assert all(not s.secrets.is_set(n) for n in ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY"))


def test_env_example_values_are_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Uncommenting every example line gives a config that loads."""
    monkeypatch.chdir(REPO)
    values = {k: v for k, v in _env_example_lines().items() if v}
    assert not {"APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "ANTHROPIC_API_KEY"} & set(values)
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    s = load_settings(environ={}, env_file=env_file)
    assert s.config_path == EXAMPLE
    assert s.enabled is False
    assert {a.mode for a in s.accounts.values()} == {Mode.WEEKLY}
    weekly = s.accounts["dee-bot"].weekly
    assert weekly is not None and weekly.profit_take_pct == Decimal(
        values["REBALANCING_PROFIT_THRESHOLD"]
    )


# ---------------------------------------------------------------- demo portfolios


def _portfolio(spec: SimPortfolioSpec) -> Portfolio:
    stops = {o.symbol: o.stop_price for o in spec.open_orders if o.type == "stop"}
    return Portfolio(
        cash=spec.cash,
        positions=tuple(
            Position(
                symbol=p.symbol,
                qty=p.qty,
                avg_entry_price=p.avg_entry_price,
                current_price=p.current_price,
                opened_at=p.opened_at,
                catalyst=p.catalyst,
                catalyst_date=p.catalyst_date,
                stop_price=stops.get(p.symbol),
            )
            for p in spec.positions
        ),
    )


def _evaluate(
    settings: Settings, account: str, block: Block, day: date
) -> dict[str, tuple[Action, Decimal, list[str]]]:
    config = settings.accounts[account]
    assert config.sim_portfolio is not None
    portfolio = _portfolio(load_sim_portfolio(config.sim_portfolio))
    rb = config.rule_block(block)
    assert rb is not None
    results = {}
    proposals = []
    for p in portfolio.positions:
        proposal = evaluate_position(p, rb, portfolio.equity, day)
        if proposal is not None:
            proposals.append(proposal)
            results[p.symbol] = (proposal.action, proposal.qty, proposal.reasons)
    ranked = [pr.symbol for pr in sorted(proposals, key=lambda pr: pr.priority)]
    results["_ranked"] = (Action.HOLD, Decimal(0), ranked)
    return results


def test_dee_bot_demo_weekly_review_shows_every_weekly_rule(example: Settings) -> None:
    spec = load_sim_portfolio(REPO / "config" / "demo-portfolio.json")
    assert _portfolio(spec).equity == Decimal("100000.00")
    assert set(spec.prices) == {"TSLA", "NVDA"}
    got = _evaluate(example, "dee-bot", Block.WEEKLY, REVIEW_DAY)
    ranked = got.pop("_ranked")[2]
    assert got == {
        "SHOP": (Action.EXIT, Decimal(80), ["stop_approach"]),  # 88 ≤ 85 × 1.05
        "MSFT": (Action.TRIM, Decimal(10), ["concentration"]),  # 18.9% > 15%
        "AMD": (Action.TRIM, Decimal(50), ["profit_take"]),  # +24% ≥ 20%
        "KO": (Action.EXIT, Decimal(150), ["stale"]),  # 40 days, +2%
        "ENPH": (Action.EXIT, Decimal(150), ["stale"]),  # 26 days, catalyst passed
    }
    # JNJ (12 days), PG (33 days but +6.25%, no catalyst) and XOM (5 days) hold.
    # Five candidates for a cap of three: KO and ENPH get weekly_cap_reached.
    assert ranked == ["SHOP", "MSFT", "AMD", "KO", "ENPH"]
    assert len(ranked) > example.accounts["dee-bot"].max_exits_per_week


def test_shorgan_demo_daily_guard_and_weekly_review(example: Settings) -> None:
    spec = load_sim_portfolio(REPO / "config" / "demo-portfolio-shorgan.json")
    assert _portfolio(spec).equity == Decimal("1000.00")
    daily = _evaluate(example, "shorgan-bot", Block.DAILY, GUARD_DAY)
    daily.pop("_ranked")
    assert daily == {
        "RGTI": (Action.TRIM, Decimal(10), ["profit_take"]),  # +35% ≥ 30%
        "SOUN": (Action.EXIT, Decimal(25), ["loss_cut"]),  # −13% ≤ −12%
    }
    weekly = _evaluate(example, "shorgan-bot", Block.WEEKLY, REVIEW_DAY)
    ranked = weekly.pop("_ranked")[2]
    assert weekly == {
        "SOUN": (Action.EXIT, Decimal(25), ["stop_approach"]),  # 6.96 ≤ 8 × 0.85 × 1.05
        "RGTI": (Action.TRIM, Decimal(6), ["concentration"]),  # 27% > 20%
        "PLTR": (Action.EXIT, Decimal(8), ["stale"]),  # 19 days > 14, +2%
    }
    assert ranked == ["SOUN", "RGTI", "PLTR"]  # cap 2: PLTR is weekly_cap_reached
