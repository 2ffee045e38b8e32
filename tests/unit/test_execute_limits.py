"""Entry limits taken from the account's config."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from rebalancerd.adapters.calendar import NyseCalendar
from rebalancerd.config.models import AccountConfig
from rebalancerd.services.accounts import AccountContext
from rebalancerd.services.entries import max_position_pct


def ctx(**blocks: Any) -> AccountContext:
    config = AccountConfig.model_validate({"broker": "alpaca", **blocks})
    return AccountContext("a", config, None, ZoneInfo("America/New_York"), NyseCalendar())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("blocks", "limit"),
    [
        ({}, None),
        ({"weekly": {"max_position_pct": 20}}, D(20)),
        ({"weekly": {"stale_days": 21}, "daily": {"max_position_pct": 15}}, D(15)),
        ({"weekly": {"max_position_pct": 20}, "daily": {"max_position_pct": 15}}, D(15)),
    ],
)
def test_an_entry_is_capped_by_the_tightest_block(blocks: dict[str, Any], limit: D | None) -> None:
    assert max_position_pct(ctx(**blocks)) == limit
