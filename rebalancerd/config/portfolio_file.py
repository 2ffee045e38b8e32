"""The simulated broker's starting portfolio file (SPEC §13 contract).

Parsed with pydantic so a malformed file is refused at config load with the
file and the offending field named (exit 78), before anything runs.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rebalancerd.errors import ConfigError


class _Lenient(BaseModel):
    # Extra fields are ignored: the file is often exported from elsewhere.
    model_config = ConfigDict(extra="ignore", frozen=True)


class SimPositionSpec(_Lenient):
    symbol: str = Field(min_length=1, max_length=12)
    qty: Decimal
    avg_entry_price: Decimal = Field(gt=0)
    current_price: Decimal | None = Field(default=None, gt=0)
    opened_at: date | None = None
    catalyst: str | None = None
    catalyst_date: date | None = None

    @field_validator("symbol")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.strip().upper()


class SimOrderSpec(_Lenient):
    symbol: str = Field(min_length=1, max_length=12)
    side: Literal["buy", "sell"]
    type: Literal["stop", "limit", "stop_limit", "market"] = "stop"
    qty: Decimal = Field(gt=0)
    stop_price: Decimal | None = Field(default=None, gt=0)
    limit_price: Decimal | None = Field(default=None, gt=0)
    time_in_force: Literal["day", "gtc"] = "gtc"
    client_order_id: str | None = None

    @field_validator("symbol")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.strip().upper()


class SimPortfolioSpec(_Lenient):
    cash: Decimal
    positions: list[SimPositionSpec] = Field(default_factory=list)
    open_orders: list[SimOrderSpec] = Field(default_factory=list)
    #: Optional market prices of symbols not held (entries need a price to fill).
    prices: dict[str, Decimal] = Field(default_factory=dict)

    @field_validator("positions")
    @classmethod
    def _one_row_per_symbol(cls, value: list[SimPositionSpec]) -> list[SimPositionSpec]:
        seen: set[str] = set()
        for p in value:
            if p.symbol in seen:
                raise ValueError(f"{p.symbol} is listed twice: one row per symbol")
            seen.add(p.symbol)
        return value


def load_sim_portfolio(path: Path) -> SimPortfolioSpec:
    """Read and validate a portfolio file; any problem is a ConfigError naming it."""
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read simulated portfolio: {exc.strerror}", source=str(path)
        ) from None
    except UnicodeDecodeError:
        raise ConfigError("simulated portfolio is not UTF-8 text", source=str(path)) from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"invalid JSON at line {exc.lineno}: {exc.msg}", source=str(path)
        ) from None
    try:
        return SimPortfolioSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(root)"
        raise ConfigError(err["msg"], source=str(path), key=key) from None
