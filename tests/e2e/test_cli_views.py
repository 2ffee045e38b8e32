"""The operator's week through the real CLI, with golden output (fixed clock via --now).

review with ``approval = "always"`` → ``decisions --pending`` → ``approve`` two,
``reject`` one → ``execute`` → ``decision ID`` → ``caps`` → ``runs`` → ``export``.
The human tables are compared with the goldens below; decision uids (random)
are replaced by ``<uid>``. Stdout is a pipe here, so the tables must come out
wide rather than wrapped at 80 columns. The week is seeded once per module:
each CLI call is a subprocess, and most checks only read.
"""

# ruff: noqa: E501 - golden tables are as wide as the CLI prints them

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from rebalancerd.adapters.db.engine import make_engine
from rebalancerd.adapters.db.store import SqlStore
from tests.e2e.conftest import Result, example_config

NY = ZoneInfo("America/New_York")
SATURDAY = "2026-11-28T12:00"
SUNDAY = "2026-11-29T10:00"
MONDAY_OPEN = "2026-11-30T09:30"


def normalised(text: str) -> str:
    text = re.sub(r"\b[0-9a-f]{32}\b", "<uid>", text)
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


@dataclass
class Week:
    run: Callable[..., Result]
    outputs: dict[str, Result]


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Week:
    folder = tmp_path_factory.mktemp("approval")
    config = example_config(folder, replace={'approval = "never"': 'approval = "always"'})
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REBALANCING_", "REBALANCERD_", "ENABLE_AUTO", "APCA_"))
    }

    def run(*args: str, user: str = "alice") -> Result:
        proc = subprocess.run(
            [sys.executable, "-m", "rebalancerd", "--config", str(config), *args],
            capture_output=True,
            text=True,
            env={**env, "LOGNAME": user},
            cwd=folder,
            timeout=120,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    outputs = {
        "review": run("review", "--account", "dee-bot", "--now", SATURDAY),
        "pending": run("decisions", "--pending", "--now", SATURDAY),
        "approve": run("approve", "1", "3", "--now", SUNDAY),
        "reject": run("reject", "2", "--reason", "MSFT stays", "--now", SUNDAY, user="bob"),
        "execute": run("execute", "--account", "dee-bot", "--now", MONDAY_OPEN),
    }
    store = SqlStore(make_engine(f"sqlite:///{folder / 'rebalancerd.db'}"))
    store.record_missed(
        "daily_guard",
        None,
        scheduled_at=datetime(2026, 11, 30, 16, 30, tzinfo=NY),
        at=datetime(2026, 12, 1, 8, 0, tzinfo=NY),
        note="daemon down: skipped",
    )
    store.engine.dispose()
    return Week(run, outputs)


PENDING = """
decisions (America/New_York)
┏━━━━┳━━━━━━━━━┳━━━━━━━━━━━━━━━┳━━━━━━━━┳━━━━━━━━┳━━━━━┳━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓
┃ id ┃ account ┃ source        ┃ symbol ┃ action ┃ qty ┃ status           ┃ reasons       ┃ execute_at           ┃ why                                            ┃
┡━━━━╇━━━━━━━━━╇━━━━━━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━╇━━━━━╇━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┩
│ 1  │ dee-bot │ weekly_review │ SHOP   │ EXIT   │ 80  │ pending_approval │ stop_approach │ Mon 2026-11-30 09:30 │ price 88.00 within 5.0% of stop 85.00          │
│ 2  │ dee-bot │ weekly_review │ MSFT   │ TRIM   │ 10  │ pending_approval │ concentration │ Mon 2026-11-30 09:30 │ weight 18.9% > 15.0% of equity, trim to 15.0%  │
│ 3  │ dee-bot │ weekly_review │ AMD    │ TRIM   │ 50  │ pending_approval │ profit_take   │ Mon 2026-11-30 09:30 │ up +24.0% ≥ +20.0% profit-take level, trim 50% │
└────┴─────────┴───────────────┴────────┴────────┴─────┴──────────────────┴───────────────┴──────────────────────┴────────────────────────────────────────────────┘
"""

DECISION_3 = """
decision 3: dee-bot TRIM 50 AMD — filled
  source      weekly_review
  reasons     profit_take
  why         up +24.0% ≥ +20.0% profit-take level, trim 50%
  created     Sat 2026-11-28 12:00
  execute at  Mon 2026-11-30 09:30
  slot week   2026-11-30
  report      none
inputs
┏━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━┓
┃ input            ┃ value      ┃
┡━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━┩
│ age_days         │ 19         │
│ avg_entry_price  │ 100.00     │
│ block            │ weekly     │
│ catalyst_date    │ 2026-12-08 │
│ current_price    │ 124.00     │
│ equity           │ 100000.00  │
│ max_position_pct │ 0.15       │
│ plpc             │ 0.240000   │
│ profit_take_pct  │ 0.2        │
│ qty              │ 100        │
│ stale_days       │ 21         │
│ stop_price       │ 85.00      │
│ weight           │ 0.124000   │
└──────────────────┴────────────┘
history (America/New_York)
┏━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓
┃ at                   ┃ status           ┃ by          ┃ note                            ┃
┡━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┩
│ Sat 2026-11-28 12:00 │ proposed         │ rebalancerd │                                 │
│ Sat 2026-11-28 12:00 │ pending_approval │ rebalancerd │                                 │
│ Sun 2026-11-29 10:00 │ approved         │ alice       │ approved by alice               │
│ Mon 2026-11-30 09:30 │ submitted        │ rebalancerd │ qty 50                          │
│ Mon 2026-11-30 09:30 │ filled           │ rebalancerd │ order filled filled 50 @ 124.00 │
└──────────────────────┴──────────────────┴─────────────┴─────────────────────────────────┘
orders
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━┳━━━━━━━━┳━━━━━┳━━━━━━━━━━━━┳━━━━━━━━┳━━━━━━━━┳━━━━━━━━━━━┳━━━━━━━┓
┃ client_order_id                         ┃ side ┃ type   ┃ qty ┃ stop_price ┃ status ┃ filled ┃ avg price ┃ error ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━╇━━━━━━━━╇━━━━━╇━━━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━╇━━━━━━━┩
│ rbd-<uid>-x1 │ sell │ market │ 50  │            │ filled │ 50     │ 124       │       │
│ rbd-<uid>-s1 │ sell │ stop   │ 50  │ 85         │ new    │ 0      │           │       │
└─────────────────────────────────────────┴──────┴────────┴─────┴────────────┴────────┴────────┴───────────┴───────┘
"""

CAPS = """
weekly exit caps
┏━━━━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━┳━━━━━━┳━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓
┃ account     ┃ week of    ┃ cap ┃ used ┃ left ┃ held by                       ┃
┡━━━━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━╇━━━━━━╇━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┩
│ dee-bot     │ 2026-11-30 │ 3   │ 2    │ 1    │ SHOP #1 filled, AMD #3 filled │
│ shorgan-bot │ 2026-11-30 │ 2   │ 0    │ 2    │                               │
└─────────────┴────────────┴─────┴──────┴──────┴───────────────────────────────┘
"""

RUNS = """
job runs (America/New_York)
┏━━━━┳━━━━━━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━┓
┃ id ┃ job           ┃ account ┃ scheduled            ┃ started              ┃ seconds ┃ outcome   ┃ error                ┃
┡━━━━╇━━━━━━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━┩
│ 1  │ weekly_review │ dee-bot │                      │ Sat 2026-11-28 12:00 │ 0.0     │ succeeded │                      │
│ 2  │ execution     │ dee-bot │                      │ Mon 2026-11-30 09:30 │ 0.0     │ succeeded │                      │
│ 3  │ daily_guard   │         │ Mon 2026-11-30 16:30 │ Tue 2026-12-01 08:00 │ 0.0     │ missed    │ daemon down: skipped │
└────┴───────────────┴─────────┴──────────────────────┴──────────────────────┴─────────┴───────────┴──────────────────────┘
3 runs, 0 failed, 1 missed
"""


def test_the_transcript_commands_succeed(week: Week) -> None:
    for name, res in week.outputs.items():
        assert res.code == 0, (name, res.stderr)
    assert week.outputs["approve"].stdout.splitlines() == [
        "approved #1 dee-bot EXIT 80 SHOP: approved by alice",
        "approved #3 dee-bot TRIM 50 AMD: approved by alice",
    ]
    assert week.outputs["reject"].stdout == (
        "rejected #2 dee-bot TRIM 10 MSFT: rejected by bob: MSFT stays\n"
    )


def test_the_operator_views_golden(week: Week) -> None:
    assert normalised(week.outputs["pending"].stdout) == normalised(PENDING)
    detail = week.run("decision", "3")
    assert detail.code == 0, detail.stderr
    assert normalised(detail.stdout) == normalised(DECISION_3)
    caps = week.run("caps", "--now", "2026-11-30T10:00")
    assert normalised(caps.stdout) == normalised(CAPS)
    runs = week.run("runs")
    assert normalised(runs.stdout) == normalised(RUNS)


def test_decision_json_tells_the_whole_story(week: Week) -> None:
    story = week.run("decision", "1", "--json").json()
    assert (story["symbol"], story["status"], story["reasons"]) == (
        "SHOP",
        "filled",
        ["stop_approach"],
    )
    assert story["inputs"]["qty"] == "80" and story["inputs"]["current_price"] == "88.00"
    assert [(e["status"], e["actor"]) for e in story["history"]] == [
        ("proposed", "rebalancerd"),
        ("pending_approval", "rebalancerd"),
        ("approved", "alice"),
        ("submitted", "rebalancerd"),
        ("filled", "rebalancerd"),
    ]
    assert story["approvals"] == [
        {
            "status": "approved",
            "at": "2026-11-29T10:00:00-05:00",
            "actor": "alice",
            "note": "approved by alice",
        }
    ]
    assert [(o["side"], o["type"], o["status"]) for o in story["orders"]] == [
        ("sell", "market", "filled")
    ]
    assert story["fills"] == [
        {
            "client_order_id": story["orders"][0]["client_order_id"],
            "side": "sell",
            "qty": 80,
            "avg_price": 88,
            "at": "2026-11-30T09:30:00-05:00",
        }
    ]
    rejected = week.run("decision", "2", "--json").json()
    assert rejected["approvals"][0]["note"] == "rejected by bob: MSFT stays"
    assert rejected["slot_week"] is None  # the slot went back


def test_decisions_filters_combine(week: Week) -> None:
    def ids(*args: str) -> list[int]:
        res = week.run("decisions", "--json", *args)
        assert res.code == 0, res.stderr
        return [d["id"] for d in res.json()]

    assert ids() == [1, 2, 3, 4, 5]
    assert ids("--status", "filled") == [1, 3]
    assert ids("--status", "filled", "--symbol", "amd") == [3]
    assert ids("--status", "rejected", "--status", "skipped") == [2, 4, 5]
    assert ids("--account", "shorgan-bot") == []
    assert ids("--since", "2026-11-29") == []
    assert ids("--since", "2026-11-28", "--pending") == []


def test_runs_json(week: Week) -> None:
    runs = week.run("runs", "--json").json()
    assert [(r["job"], r["account"], r["outcome"]) for r in runs] == [
        ("weekly_review", "dee-bot", "succeeded"),
        ("execution", "dee-bot", "succeeded"),
        ("daily_guard", None, "missed"),
    ]
    assert runs[0]["started_at"] == "2026-11-28T12:00:00-05:00"
    assert runs[2]["scheduled_at"] == "2026-11-30T16:30:00-05:00"
    only = week.run("runs", "--json", "--job", "execution").json()
    assert [r["job"] for r in only] == ["execution"]


def test_export_writes_exits_with_gains(week: Week, tmp_path: Path) -> None:
    out = tmp_path / "audit.jsonl"
    res = week.run("export", "--since", "2026-11-28", "--format", "jsonl", "--out", str(out))
    assert res.code == 0, res.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    gains = {r["symbol"]: r["realised_gain"] for r in rows if r["realised_gain"]}
    assert gains == {"SHOP": "-960.00", "AMD": "1200.00"}
    csv_out = week.run("export", "--format", "csv")
    assert csv_out.stdout.splitlines()[0].startswith("decision_id,decision_uid,account,")
    assert len(csv_out.stdout.splitlines()) == len(rows) + 1


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("decision", "99"), 2, "decision 99 not found"),
        (("approve", "99"), 2, "decision 99 not found"),
        (("approve",), 2, "give decision ids or --all"),
        (("approve", "1", "--all"), 2, "give decision ids or --all"),
        (("approve", "1", "--account", "shorgan-bot"), 2, "belongs to account 'dee-bot'"),
        (("reject", "x"), 2, "is not a valid integer"),
        (("export", "--out", "/nonexistent/dir/x.csv"), 1, "cannot write"),
        (("approve", "1"), 1, "decision 1 (dee-bot EXIT SHOP) is filled, not pending approval"),
        (("reject", "1"), 1, "decision 1 (dee-bot EXIT SHOP) is filled; only pending or approved"),
    ],
)
def test_operator_errors_are_one_line_and_the_right_code(
    week: Week, args: tuple[str, ...], code: int, message: str
) -> None:
    res = week.run(*args)
    assert res.code == code, res.stderr
    assert message in res.stderr
    assert "Traceback" not in res.stderr


def test_approve_all_with_nothing_pending_is_fine(week: Week) -> None:
    res = week.run("approve", "--all", "--now", SUNDAY)
    assert (res.code, res.stdout) == (0, "no decisions pending approval\n")
    assert week.run("approve", "--all", "--json").json() == []
