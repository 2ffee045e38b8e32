"""The one-shot jobs through the real CLI: review, guard, execute, caps (SPEC §10, §13)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import Runner, example_config

SATURDAY = "2026-11-28T12:00"
MONDAY_OPEN = "2026-11-30T09:30"
REQUIRED = {"id", "account", "source", "symbol", "action", "qty", "reasons", "status", "execute_at"}


def by_symbol(decisions: list[dict]) -> dict[str, dict]:
    return {d["symbol"]: d for d in decisions}


def test_dry_run_review_prints_only_json_with_the_contract_fields(cli: Runner) -> None:
    res = cli("review", "--account", "dee-bot", "--dry-run", "--json", "--now", SATURDAY)
    assert res.code == 0, res.stderr
    decisions = res.json()  # stdout holds the JSON document alone
    assert all(d.keys() >= REQUIRED for d in decisions)
    got = {
        s: (d["action"], d["reasons"], d["status"], d["skip_reason"])
        for s, d in by_symbol(decisions).items()
    }
    assert got == {
        "SHOP": ("EXIT", ["stop_approach"], "dry_run", None),
        "MSFT": ("TRIM", ["concentration"], "dry_run", None),
        "AMD": ("TRIM", ["profit_take"], "dry_run", None),
        "KO": ("EXIT", ["stale"], "skipped", "weekly_cap_reached"),
        "ENPH": ("EXIT", ["stale"], "skipped", "weekly_cap_reached"),
    }
    assert {d["execute_at"] for d in decisions} == {"2026-11-30T09:30:00-05:00"}
    assert by_symbol(decisions)["AMD"]["qty"] == 50
    # A dry run holds no slot.
    caps = cli("caps", "--account", "dee-bot", "--json", "--now", SATURDAY).json()
    assert (caps["dee-bot"]["used"], caps["dee-bot"]["left"]) == (0, 3)


def test_the_cap_holds_across_two_reviews_in_one_week(cli: Runner) -> None:
    first = cli("review", "--account", "dee-bot", "--json", "--now", SATURDAY).json()
    approved = sorted(d["symbol"] for d in first if d["status"] == "approved")
    assert approved == ["AMD", "MSFT", "SHOP"]
    second = cli("review", "--account", "dee-bot", "--json", "--now", "2026-11-28T15:00").json()
    reasons = {d["symbol"]: d["skip_reason"] for d in second}
    assert {d["status"] for d in second} == {"skipped"}
    # AMD's +20% profit-take level is marked taken, so it does not fire again.
    assert reasons == {
        "SHOP": "open_decision",
        "MSFT": "open_decision",
        "KO": "weekly_cap_reached",
        "ENPH": "weekly_cap_reached",
    }
    caps = cli("caps", "--account", "dee-bot", "--json", "--now", SATURDAY).json()["dee-bot"]
    assert (caps["week_start"], caps["cap"], caps["used"], caps["left"]) == ("2026-11-30", 3, 3, 0)
    assert sorted(s["symbol"] for s in caps["slots"]) == ["AMD", "MSFT", "SHOP"]


def test_execute_fills_the_queued_exits_at_the_monday_open(cli: Runner) -> None:
    cli("review", "--account", "dee-bot", "--json", "--now", SATURDAY)
    res = cli("execute", "--account", "dee-bot", "--json", "--now", MONDAY_OPEN)
    assert res.code == 0, res.stderr
    statuses = {d["symbol"]: d["status"] for d in res.json()}
    assert statuses == {"SHOP": "filled", "MSFT": "filled", "AMD": "filled"}
    positions = by_symbol(
        cli("positions", "--account", "dee-bot", "--json", "--now", MONDAY_OPEN).json()
    )
    assert "SHOP" not in positions
    assert (positions["AMD"]["qty"], positions["MSFT"]["qty"]) == (50, 35)
    # Executing again sends nothing twice.
    again = cli("execute", "--account", "dee-bot", "--json", "--now", MONDAY_OPEN).json()
    assert again == []
    # Midweek, "this week" is the week whose slots the exits used; after Friday's
    # close it is the next week's.
    wednesday = cli("caps", "--account", "dee-bot", "--json", "--now", "2026-12-02T12:00")
    caps = wednesday.json()["dee-bot"]
    assert (caps["week_start"], caps["used"], caps["left"]) == ("2026-11-30", 3, 0)
    friday = cli("caps", "--account", "dee-bot", "--json", "--now", "2026-12-04T17:00")
    assert friday.json()["dee-bot"]["week_start"] == "2026-12-07"


def test_guards_apply_to_daily_and_hybrid_accounts_only(cli: Runner) -> None:
    weekly = cli("guard", "--account", "dee-bot", "--json", "--now", "2026-11-25T16:30")
    assert (weekly.code, weekly.json()) == (0, [])
    hybrid = cli("guard", "--account", "shorgan-bot", "--json", "--now", "2026-11-25T16:30")
    got = {d["symbol"]: (d["action"], d["reasons"], d["source"]) for d in hybrid.json()}
    assert got == {
        "RGTI": ("TRIM", ["profit_take"], "daily_guard"),
        "SOUN": ("EXIT", ["loss_cut"], "daily_guard"),
    }
    # Daily-guard exits go out at the next open.
    assert {d["execute_at"] for d in hybrid.json()} == {"2026-11-27T09:30:00-05:00"}


def test_master_switch_off_records_disabled_and_holds_no_slot(cli: Runner) -> None:
    res = cli(
        "review",
        "--account",
        "dee-bot",
        "--json",
        "--now",
        SATURDAY,
        env_extra={"ENABLE_AUTO_REBALANCING": "false"},
    )
    skips = {d["symbol"]: d["skip_reason"] for d in res.json()}
    assert skips == {
        "SHOP": "disabled",
        "MSFT": "disabled",
        "AMD": "disabled",
        "KO": "weekly_cap_reached",
        "ENPH": "weekly_cap_reached",
    }
    caps = cli("caps", "--account", "dee-bot", "--json", "--now", SATURDAY).json()
    assert caps["dee-bot"]["used"] == 0


def test_decisions_lists_what_the_review_recorded(cli: Runner) -> None:
    cli("review", "--account", "dee-bot", "--now", SATURDAY)
    listed = cli("decisions", "--account", "dee-bot", "--json", "--now", SATURDAY).json()
    assert sorted(d["symbol"] for d in listed) == ["AMD", "ENPH", "KO", "MSFT", "SHOP"]
    human = cli("decisions", "--account", "dee-bot", "--now", SATURDAY)
    assert human.code == 0 and "SHOP" in human.stdout


def test_bad_config_exits_78_with_one_line_naming_the_key(cli: Runner, tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    bad = example_config(
        tmp_path / "bad", replace={"max_exits_per_week = 3": "max_exits_per_weak = 3"}
    )
    res = cli("review", "--config", str(bad), "--dry-run")
    assert res.code == 78
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "max_exits_per_weak" in lines[0] and str(bad) in lines[0]


def test_bad_portfolio_file_exits_78_naming_the_file(cli: Runner, tmp_path: Path) -> None:
    portfolio = tmp_path / "broken.json"
    portfolio.write_text('{"cash": "100", "positions": [', encoding="utf-8")
    (tmp_path / "bad").mkdir()
    config = example_config(tmp_path / "bad")
    text = config.read_text(encoding="utf-8")
    demo = next(
        line.split("=", 1)[1].strip()
        for line in text.splitlines()
        if line.startswith("sim_portfolio") and "shorgan" not in line
    )
    config.write_text(text.replace(demo, f'"{portfolio}"'), encoding="utf-8")
    res = cli("review", "--config", str(config), "--account", "dee-bot", "--dry-run")
    assert res.code == 78, res.stderr
    assert "broken.json" in res.stderr and "line 1" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_usage_errors_exit_2(cli: Runner) -> None:
    unknown = cli("review", "--account", "nobody", "--dry-run")
    assert unknown.code == 2 and "nobody" in unknown.stderr
    bad_now = cli("review", "--now", "next tuesday", "--dry-run")
    assert bad_now.code == 2 and "--now" in bad_now.stderr
    bad_flag = cli("review", "--frobnicate")
    assert bad_flag.code == 2


def test_portfolio_dates_are_dates_in_the_configured_timezone(cli: Runner, tmp_path: Path) -> None:
    (tmp_path / "la").mkdir()
    config = example_config(
        tmp_path / "la",
        replace={'timezone = "America/New_York"': 'timezone = "America/Los_Angeles"'},
    )
    res = cli(
        "positions", "--config", str(config), "--account", "dee-bot", "--json", "--now", SATURDAY
    )
    enph = by_symbol(res.json())["ENPH"]
    assert (enph["opened_at"], enph["age_days"]) == ("2026-11-02", 26)
