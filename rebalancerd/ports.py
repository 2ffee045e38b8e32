"""Ports: the small interfaces services depend on, and the records crossing them.

Adapters (simulated broker, Alpaca, SQLAlchemy store, report parsers) implement
these; tests use fakes that implement them too. All datetimes crossing a port
are timezone-aware UTC; all money and quantities are ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from rebalancerd.domain.model import (
    Action,
    OrderStatus,
    OrderType,
    Side,
    SkipReason,
    Source,
    Status,
)

# --------------------------------------------------------------------------- broker


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    cash: Decimal
    equity: Decimal
    buying_power: Decimal


@dataclass(frozen=True, slots=True)
class BrokerPosition:
    """A position as the broker reports it.

    ``opened_at``/``catalyst``/``catalyst_date`` are hints only some brokers know
    (the simulated portfolio file carries them); the store's position record is
    the daemon's own memory of when a position was opened.
    """

    symbol: str
    qty: Decimal
    qty_available: Decimal
    avg_entry_price: Decimal
    current_price: Decimal | None
    opened_at: datetime | None = None
    catalyst: str | None = None
    catalyst_date: date | None = None


@dataclass(frozen=True, slots=True)
class OrderRequest:
    symbol: str
    qty: Decimal
    side: Side
    client_order_id: str
    type: OrderType = OrderType.MARKET
    time_in_force: str = "day"
    stop_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    id: str
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    qty: Decimal
    status: OrderStatus
    filled_qty: Decimal = Decimal(0)
    filled_avg_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: str = "day"
    submitted_at: datetime | None = None


class Broker(Protocol):
    """One trading account at a broker."""

    def get_account(self) -> AccountSnapshot: ...

    def get_positions(self) -> list[BrokerPosition]: ...

    def get_open_orders(self) -> list[BrokerOrder]: ...

    def submit_order(self, request: OrderRequest) -> BrokerOrder:
        """Send an order; raises BrokerRejection (4xx) or TransientBrokerError."""
        ...

    def cancel_order(self, order_id: str) -> None: ...

    def get_order(self, order_id: str) -> BrokerOrder: ...

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None: ...

    def latest_price(self, symbol: str) -> Decimal | None:
        """The last known market price of ``symbol`` (held or not); None when unknown.

        Entries are sized from it at execution time, after the exits filled.
        """
        ...

    def market_is_open(self) -> bool:
        """Whether an order sent now trades now. Executions wait for the open rather
        than cancel stops and queue market orders over a weekend."""
        ...


# --------------------------------------------------------------------------- store


@dataclass(frozen=True, slots=True)
class PositionRecord:
    """The daemon's memory of an open position (age, catalyst, profit levels)."""

    account: str
    symbol: str
    opened_at: datetime
    opened_at_source: str
    avg_entry_price: Decimal
    catalyst: str | None = None
    catalyst_date: date | None = None
    profit_levels_taken: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class CapClaim:
    """Ask the store to take a weekly slot for the decision it records."""

    week_start: date
    cap: int


@dataclass(frozen=True, slots=True)
class NewDecision:
    account: str
    source: Source
    symbol: str
    action: Action
    qty: Decimal
    reasons: Sequence[str]
    details: Sequence[str]
    inputs: Mapping[str, str]
    execute_at: datetime
    status: Status
    created_at: datetime
    skip_reason: SkipReason | None = None
    fraction: Decimal | None = None
    profit_level: str | None = None
    report_id: int | None = None
    actor: str = "rebalancerd"


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    id: int
    uid: str
    account: str
    source: Source
    symbol: str
    action: Action
    qty: Decimal
    reasons: tuple[str, ...]
    details: tuple[str, ...]
    inputs: Mapping[str, str]
    execute_at: datetime
    status: Status
    created_at: datetime
    updated_at: datetime
    skip_reason: SkipReason | None = None
    fraction: Decimal | None = None
    profit_level: str | None = None
    report_id: int | None = None
    slot_week: date | None = None


@dataclass(frozen=True, slots=True)
class DecisionEvent:
    decision_id: int
    status: Status
    at: datetime
    actor: str
    note: str | None = None


@dataclass(frozen=True, slots=True)
class OrderRecord:
    id: int
    decision_id: int | None
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    qty: Decimal
    status: str
    broker_order_id: str | None = None
    stop_price: Decimal | None = None
    filled_qty: Decimal = Decimal(0)
    filled_avg_price: Decimal | None = None
    error: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SlotRecord:
    account: str
    week_start: date
    slot_no: int
    decision_id: int
    symbol: str


@dataclass(frozen=True, slots=True)
class JobRun:
    """One row of the job-run table (outcome: running, succeeded, failed, missed)."""

    id: int
    job: str
    account: str | None
    scheduled_at: datetime | None
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DecisionFilter:
    account: str | None = None
    statuses: frozenset[Status] | None = None
    since: datetime | None = None
    symbol: str | None = None
    source: Source | None = None
    ids: frozenset[int] | None = None
    limit: int | None = None


class Store(Protocol):
    """Persistence of decisions, slots, orders, position records and job runs."""

    # decisions and slots
    def record_decision(self, new: NewDecision, claim: CapClaim | None) -> DecisionRecord:
        """Persist a decision and its history atomically.

        When ``claim`` is given and ``new.status`` holds a slot, a weekly slot is
        taken in the same transaction; if none is free the decision is stored as
        ``skipped``/``weekly_cap_reached`` instead. A non-skipped decision with a
        ``profit_level`` marks that level taken on the position record.
        """
        ...

    def transition(
        self,
        decision_id: int,
        new_status: Status,
        *,
        at: datetime,
        actor: str = "rebalancerd",
        note: str | None = None,
        skip_reason: SkipReason | None = None,
    ) -> DecisionRecord:
        """Move a decision along the status table; releasing ends free its slot."""
        ...

    def get_decision(self, decision_id: int) -> DecisionRecord: ...

    def list_decisions(self, flt: DecisionFilter) -> list[DecisionRecord]: ...

    def decision_history(self, decision_id: int) -> list[DecisionEvent]: ...

    def open_decision_symbols(self, account: str) -> set[str]: ...

    def slots(self, account: str, week_start: date) -> list[SlotRecord]: ...

    # orders
    def record_order(
        self, decision_id: int | None, request: OrderRequest, *, at: datetime
    ) -> OrderRecord:
        """Write the order intent (status ``pending_submit``) before it is sent."""
        ...

    def update_order(
        self,
        client_order_id: str,
        *,
        status: str,
        at: datetime,
        broker_order: BrokerOrder | None = None,
        error: str | None = None,
    ) -> OrderRecord: ...

    def orders_for_decision(self, decision_id: int) -> list[OrderRecord]: ...

    def unresolved_orders(self, account: str) -> list[OrderRecord]: ...

    # position records
    def position_records(self, account: str) -> dict[str, PositionRecord]: ...

    def open_position_record(self, record: PositionRecord) -> PositionRecord:
        """Create the record of a newly seen position; an existing open one wins."""
        ...

    def close_position_record(self, account: str, symbol: str, *, at: datetime) -> None: ...

    # simulated broker state
    def load_sim_state(self, account: str) -> dict[str, Any] | None: ...

    def save_sim_state(self, account: str, state: dict[str, Any]) -> None: ...

    # job runs
    def start_run(
        self, job: str, account: str | None, *, scheduled_at: datetime | None, started_at: datetime
    ) -> int: ...

    def finish_run(
        self, run_id: int, *, outcome: str, finished_at: datetime, error: str | None = None
    ) -> None: ...

    def runs_scheduled_at(self, job: str, scheduled_at: datetime) -> list[JobRun]:
        """Runs of ``job`` recorded for the fire time ``scheduled_at`` (any outcome)."""
        ...

    def record_missed(
        self, job: str, account: str | None, *, scheduled_at: datetime, at: datetime, note: str
    ) -> int:
        """Record a fire time that will not run (outcome ``missed``)."""
        ...

    def latest_runs(self) -> dict[str, JobRun]:
        """The most recent run of each job, by job name."""
        ...

    # research reports
    def save_report(
        self, report: ResearchReport, *, status: str, error: str | None = None
    ) -> ResearchReport: ...


# --------------------------------------------------------------------------- others


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


class TradingCalendar(Protocol):
    def is_trading_day(self, day: date) -> bool: ...

    def holiday_name(self, day: date) -> str | None: ...


class Notifier(Protocol):
    def notify(self, event: str, payload: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class ResearchReport:
    id: int | None
    account: str
    source: str
    sha256: str
    received_at: datetime
    text: str
    advice: tuple[Any, ...] = field(default_factory=tuple)


class ResearchSource(Protocol):
    def latest_report(self, account: str, *, now: datetime) -> ResearchReport | None: ...
