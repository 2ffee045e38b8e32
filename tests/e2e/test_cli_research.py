"""Research through the real CLI: context out, a report in, merged with the rules (SPEC §6)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import Result, Runner, example_config

SATURDAY = "2026-11-28T12:00"

REPORT = """# Weekly research — dee-bot

## 📊 PORTFOLIO REBALANCING

### EXITS
- **ENPH**: EXIT - Held 18 days, catalyst passed, up 12% → Lock in gains
- **AMD**: TRIM 50% - Position grew to 18% of portfolio

### HOLDS
* KO: HOLD - dividend catalyst next week

### NEW ENTRIES
- **TSLA**: BUY - New catalyst: Model 3 refresh (Dec 15) (5% weight)
"""

MALFORMED = """## PORTFOLIO REBALANCING
### EXITS
- **ENPH**: EXIT - catalyst passed
- **AMD**: SELL SOME - too big
"""


def research_config(tmp_path: Path, report: str) -> Path:
    folder = tmp_path / "research"
    folder.mkdir()
    (folder / "2026-11-28-dee-bot.md").write_text(report, encoding="utf-8")
    (tmp_path / "cfg").mkdir()
    return example_config(
        tmp_path / "cfg",
        replace={
            "[accounts.dee-bot.weekly]": (
                "[accounts.dee-bot.research]\n"
                f'provider = "folder"\npath = "{folder}"\npattern = "*dee-bot*.md"\n\n'
                "[accounts.dee-bot.weekly]"
            )
        },
    )


def dry_run_review(cli: Runner, config: Path) -> Result:
    args = ("--config", str(config), "--account", "dee-bot", "--dry-run", "--json")
    return cli("review", *args, "--now", SATURDAY)


def test_review_merges_the_report_with_the_rules(cli: Runner, tmp_path: Path) -> None:
    res = dry_run_review(cli, research_config(tmp_path, REPORT))
    assert res.code == 0, res.stderr
    got = {
        d["symbol"]: (d["action"], d["reasons"], d["status"], d["skip_reason"]) for d in res.json()
    }
    assert got == {
        "SHOP": ("EXIT", ["stop_approach"], "dry_run", None),
        "MSFT": ("TRIM", ["concentration"], "dry_run", None),
        "AMD": ("TRIM", ["profit_take", "research"], "dry_run", None),
        "ENPH": ("EXIT", ["stale", "research"], "skipped", "weekly_cap_reached"),
        # The research HOLD vetoes KO's stale exit.
        "KO": ("EXIT", ["stale"], "skipped", "vetoed"),
        "TSLA": ("BUY", ["research"], "dry_run", None),
    }
    report_ids = {d["symbol"]: d["report_id"] for d in res.json()}
    assert report_ids["TSLA"] == report_ids["AMD"] == report_ids["KO"] is not None
    assert report_ids["SHOP"] is None  # the report says nothing about SHOP
    assert "research_report_used" in res.stderr


def test_a_malformed_report_is_rejected_by_line_and_the_rules_still_run(
    cli: Runner, tmp_path: Path
) -> None:
    res = dry_run_review(cli, research_config(tmp_path, MALFORMED))
    assert res.code == 0, res.stderr
    decisions = res.json()
    assert all("research" not in d["reasons"] for d in decisions)
    assert {d["symbol"] for d in decisions} == {"SHOP", "MSFT", "AMD", "ENPH", "KO"}
    rejected = [
        json.loads(line) for line in res.stderr.splitlines() if '"research_report_rejected"' in line
    ]
    assert len(rejected) == 1 and rejected[0]["line"] == 4


def test_check_report_names_the_bad_line(cli: Runner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.md"
    bad.write_text(MALFORMED, encoding="utf-8")
    res = cli("check-report", str(bad), "--date", "2026-11-28")
    assert res.code == 1 and "line 4" in res.stderr
    good = tmp_path / "good.md"
    good.write_text(REPORT, encoding="utf-8")
    ok = cli("check-report", str(good), "--date", "2026-11-28", "--json")
    assert ok.code == 0
    tsla = next(r for r in ok.json() if r["symbol"] == "TSLA")
    assert (tsla["action"], tsla["weight"], tsla["catalyst_date"]) == ("BUY", "5", "2026-12-15")


def test_context_json_has_the_documented_keys(cli: Runner) -> None:
    res = cli("context", "--account", "dee-bot", "--format", "json", "--now", SATURDAY)
    assert res.code == 0, res.stderr
    doc = res.json()
    assert doc["schema"] == "rebalancerd.portfolio_context/1"
    assert (doc["cap"], doc["slots_left"], doc["equity"]) == (3, 3, "100000.00")
    enph = next(p for p in doc["positions"] if p["symbol"] == "ENPH")
    assert enph["catalyst_passed"] is True and enph["age_days"] == 26
    assert [f["rule"] for f in enph["flags"]] == ["stale"]


def test_context_markdown_written_to_a_file(cli: Runner, tmp_path: Path) -> None:
    out = tmp_path / "ctx" / "dee-bot.md"
    res = cli("context", "--account", "dee-bot", "--out", str(out), "--now", SATURDAY)
    assert res.code == 0 and res.stdout == ""
    text = out.read_text(encoding="utf-8")
    assert "## PORTFOLIO REBALANCING" in text and "| ENPH |" in text


def test_a_research_entry_is_bought_after_the_exits_and_remembers_its_catalyst(
    cli: Runner, tmp_path: Path
) -> None:
    config = str(research_config(tmp_path, REPORT))
    review = cli("review", "--config", config, "--account", "dee-bot", "--now", SATURDAY)
    assert review.code == 0, review.stderr
    monday = "2026-11-30T09:30"
    res = cli("execute", "--config", config, "--account", "dee-bot", "--json", "--now", monday)
    assert res.code == 0, res.stderr
    statuses = {d["symbol"]: d["status"] for d in res.json()}
    assert statuses == {"SHOP": "filled", "MSFT": "filled", "AMD": "filled", "TSLA": "filled"}
    held = cli("positions", "--config", config, "--account", "dee-bot", "--json", "--now", monday)
    tsla = next(p for p in held.json() if p["symbol"] == "TSLA")
    # 5% of equity at 245.00 a share, whole shares; the catalyst date came from the report.
    assert tsla["qty"] == 20
    assert (tsla["catalyst_date"], tsla["opened_at_source"]) == ("2026-12-15", "entry")
