"""The database schema as SQLAlchemy declarative models.

These models are the reference the migrations are checked against (the
integration tests compare them with ``alembic.autogenerate``); the store
itself speaks Core statements over these tables. Statuses and other enums are
stored as their string values, guarded by CHECK constraints, so adding a value
is a small migration rather than a database enum change.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from rebalancerd.adapters.db.types import ExactDecimal, UTCDateTime, json_type
from rebalancerd.domain.model import Action, Source, Status

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _one_of(column: str, values: list[str]) -> str:
    """SQL text for a CHECK that a column holds one of the enum's values."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


STATUS_VALUES = [s.value for s in Status]
ACTION_VALUES = [a.value for a in Action]
SOURCE_VALUES = [s.value for s in Source]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


ACCOUNT_FK = "accounts.name"


class Account(Base):
    """Every account the daemon has written anything for."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PositionRecordRow(Base):
    """The daemon's memory of a position; at most one open row per symbol."""

    __tablename__ = "position_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[str] = mapped_column(String(64), ForeignKey(ACCOUNT_FK))
    symbol: Mapped[str] = mapped_column(String(32))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    opened_at_source: Mapped[str] = mapped_column(String(32))
    avg_entry_price: Mapped[Decimal] = mapped_column(ExactDecimal())
    catalyst: Mapped[str | None] = mapped_column(Text)
    catalyst_date: Mapped[date | None] = mapped_column(Date)
    profit_levels_taken: Mapped[list[str]] = mapped_column(json_type())
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index(
            "uq_position_records_open_account_symbol",
            "account",
            "symbol",
            unique=True,
            sqlite_where=closed_at.is_(None),
            postgresql_where=closed_at.is_(None),
        ),
    )


class ResearchReportRow(Base):
    """A research report as received, parsed or rejected."""

    __tablename__ = "research_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[str] = mapped_column(String(64), ForeignKey(ACCOUNT_FK))
    source: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index(None, "account", "sha256"),)


class DecisionRow(Base):
    """One rule outcome, persisted before anything reaches the broker."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    account: Mapped[str] = mapped_column(String(64), ForeignKey(ACCOUNT_FK))
    source: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(8))
    qty: Mapped[Decimal] = mapped_column(ExactDecimal())
    fraction: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    reasons: Mapped[list[str]] = mapped_column(json_type())
    details: Mapped[list[str]] = mapped_column(json_type())
    inputs: Mapped[dict[str, Any]] = mapped_column(json_type())
    execute_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(32))
    skip_reason: Mapped[str | None] = mapped_column(String(32))
    profit_level: Mapped[str | None] = mapped_column(String(64))
    report_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("research_reports.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint(_one_of("status", STATUS_VALUES), name="status"),
        CheckConstraint(_one_of("action", ACTION_VALUES), name="action"),
        CheckConstraint(_one_of("source", SOURCE_VALUES), name="source"),
        Index(None, "account", "status"),
        Index(None, "execute_at"),
    )


class DecisionEventRow(Base):
    """Status history of a decision; the database refuses UPDATE and DELETE."""

    __tablename__ = "decision_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    decision_id: Mapped[int] = mapped_column(Integer, ForeignKey("decisions.id"), index=True)
    status: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)


class OrderRow(Base):
    """An order intent, written before it is sent, then the broker's view of it."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    decision_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("decisions.id"), index=True)
    account: Mapped[str] = mapped_column(String(64), ForeignKey(ACCOUNT_FK))
    client_order_id: Mapped[str] = mapped_column(String(128), unique=True)
    broker_order_id: Mapped[str | None] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    type: Mapped[str] = mapped_column(String(16))
    qty: Mapped[Decimal] = mapped_column(ExactDecimal())
    stop_price: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    time_in_force: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(32))
    filled_qty: Mapped[Decimal] = mapped_column(ExactDecimal())
    filled_avg_price: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index(None, "account", "status"),)


class WeeklySlotRow(Base):
    """One of an account's weekly exit slots; the unique keys enforce the cap."""

    __tablename__ = "weekly_slots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[str] = mapped_column(String(64), ForeignKey(ACCOUNT_FK))
    week_start: Mapped[date] = mapped_column(Date)
    slot_no: Mapped[int] = mapped_column(Integer)
    decision_id: Mapped[int] = mapped_column(Integer, ForeignKey("decisions.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("account", "week_start", "slot_no"),
        CheckConstraint("slot_no >= 1", name="slot_no_positive"),
    )


class JobRunRow(Base):
    """One run of a scheduled or manual job, for the operator's audit."""

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    account: Mapped[str | None] = mapped_column(String(64), ForeignKey(ACCOUNT_FK))
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index(None, "job", "started_at"),)


class SimAccountRow(Base):
    """The simulated broker's state for one account, as one JSON document."""

    __tablename__ = "sim_accounts"

    account: Mapped[str] = mapped_column(String(64), ForeignKey(ACCOUNT_FK), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(json_type())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


metadata = Base.metadata

# Core handles on the tables, for the store's statements.
accounts: Table = metadata.tables["accounts"]
position_records: Table = metadata.tables["position_records"]
research_reports: Table = metadata.tables["research_reports"]
decisions: Table = metadata.tables["decisions"]
decision_events: Table = metadata.tables["decision_events"]
orders: Table = metadata.tables["orders"]
weekly_slots: Table = metadata.tables["weekly_slots"]
job_runs: Table = metadata.tables["job_runs"]
sim_accounts: Table = metadata.tables["sim_accounts"]
