"""initial schema

Revision ID: 0001
Revises:
Create Date: 2024-11-01

Hand-written and self-contained (no application imports), so that a later
change to the models cannot change what this revision does. The types mirror
rebalancerd.adapters.db.types: decimals are NUMERIC(24, 9) on PostgreSQL and
text on SQLite, JSON is JSONB on PostgreSQL, timestamps carry a time zone.

decision_events is made append-only by triggers on both engines.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = (
    "proposed",
    "pending_approval",
    "approved",
    "submitted",
    "filled",
    "partially_filled",
    "rejected",
    "cancelled",
    "expired",
    "skipped",
    "dry_run",
)
ACTIONS = ("HOLD", "EXIT", "TRIM", "BUY")
SOURCES = ("weekly_review", "daily_guard", "research", "manual")

APPEND_ONLY_MESSAGE = "decision_events is append-only"


def _decimal() -> sa.types.TypeEngine[Any]:
    return sa.Numeric(24, 9).with_variant(sa.String(64), "sqlite")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _dialect() -> str:
    """The target dialect; works offline (--sql) too, unlike op.get_bind()."""
    return op.get_context().dialect.name


def _one_of(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("name", name=op.f("uq_accounts_name")),
    )
    op.create_table(
        "position_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("opened_at", _ts(), nullable=False),
        sa.Column("opened_at_source", sa.String(32), nullable=False),
        sa.Column("avg_entry_price", _decimal(), nullable=False),
        sa.Column("catalyst", sa.Text(), nullable=True),
        sa.Column("catalyst_date", sa.Date(), nullable=True),
        sa.Column("profit_levels_taken", _json(), nullable=False),
        sa.Column("first_seen_at", _ts(), nullable=False),
        sa.Column("closed_at", _ts(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_position_records")),
        sa.ForeignKeyConstraint(
            ["account"], ["accounts.name"], name=op.f("fk_position_records_account_accounts")
        ),
    )
    op.create_index(
        "uq_position_records_open_account_symbol",
        "position_records",
        ["account", "symbol"],
        unique=True,
        sqlite_where=sa.text("closed_at IS NULL"),
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.create_table(
        "research_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("received_at", _ts(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_research_reports")),
        sa.ForeignKeyConstraint(
            ["account"], ["accounts.name"], name=op.f("fk_research_reports_account_accounts")
        ),
    )
    op.create_index(
        op.f("ix_research_reports_account_sha256"), "research_reports", ["account", "sha256"]
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uid", sa.String(32), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("qty", _decimal(), nullable=False),
        sa.Column("fraction", _decimal(), nullable=True),
        sa.Column("reasons", _json(), nullable=False),
        sa.Column("details", _json(), nullable=False),
        sa.Column("inputs", _json(), nullable=False),
        sa.Column("execute_at", _ts(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("skip_reason", sa.String(32), nullable=True),
        sa.Column("profit_level", sa.String(64), nullable=True),
        sa.Column("report_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
        sa.UniqueConstraint("uid", name=op.f("uq_decisions_uid")),
        sa.ForeignKeyConstraint(
            ["account"], ["accounts.name"], name=op.f("fk_decisions_account_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["research_reports.id"],
            name=op.f("fk_decisions_report_id_research_reports"),
        ),
        sa.CheckConstraint(_one_of("status", STATUSES), name=op.f("ck_decisions_status")),
        sa.CheckConstraint(_one_of("action", ACTIONS), name=op.f("ck_decisions_action")),
        sa.CheckConstraint(_one_of("source", SOURCES), name=op.f("ck_decisions_source")),
    )
    op.create_index(op.f("ix_decisions_account_status"), "decisions", ["account", "status"])
    op.create_index(op.f("ix_decisions_execute_at"), "decisions", ["execute_at"])
    op.create_table(
        "decision_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_events")),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["decisions.id"], name=op.f("fk_decision_events_decision_id_decisions")
        ),
    )
    op.create_index(op.f("ix_decision_events_decision_id"), "decision_events", ["decision_id"])
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("client_order_id", sa.String(128), nullable=False),
        sa.Column("broker_order_id", sa.String(128), nullable=True),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("qty", _decimal(), nullable=False),
        sa.Column("stop_price", _decimal(), nullable=True),
        sa.Column("time_in_force", sa.String(8), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("filled_qty", _decimal(), nullable=False),
        sa.Column("filled_avg_price", _decimal(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("client_order_id", name=op.f("uq_orders_client_order_id")),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["decisions.id"], name=op.f("fk_orders_decision_id_decisions")
        ),
        sa.ForeignKeyConstraint(
            ["account"], ["accounts.name"], name=op.f("fk_orders_account_accounts")
        ),
    )
    op.create_index(op.f("ix_orders_account_status"), "orders", ["account", "status"])
    op.create_index(op.f("ix_orders_decision_id"), "orders", ["decision_id"])
    op.create_table(
        "weekly_slots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("slot_no", sa.Integer(), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_weekly_slots")),
        sa.UniqueConstraint(
            "account",
            "week_start",
            "slot_no",
            name=op.f("uq_weekly_slots_account_week_start_slot_no"),
        ),
        sa.UniqueConstraint("decision_id", name=op.f("uq_weekly_slots_decision_id")),
        sa.CheckConstraint("slot_no >= 1", name=op.f("ck_weekly_slots_slot_no_positive")),
        sa.ForeignKeyConstraint(
            ["account"], ["accounts.name"], name=op.f("fk_weekly_slots_account_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["decisions.id"], name=op.f("fk_weekly_slots_decision_id_decisions")
        ),
    )
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(64), nullable=False),
        sa.Column("account", sa.String(64), nullable=True),
        sa.Column("scheduled_at", _ts(), nullable=True),
        sa.Column("started_at", _ts(), nullable=False),
        sa.Column("finished_at", _ts(), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
        sa.ForeignKeyConstraint(
            ["account"], ["accounts.name"], name=op.f("fk_job_runs_account_accounts")
        ),
    )
    op.create_index(op.f("ix_job_runs_job_started_at"), "job_runs", ["job", "started_at"])
    op.create_table(
        "sim_accounts",
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("state", _json(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_sim_accounts")),
        sa.ForeignKeyConstraint(
            ["account"], ["accounts.name"], name=op.f("fk_sim_accounts_account_accounts")
        ),
    )
    _create_append_only_triggers()


def downgrade() -> None:
    _drop_append_only_triggers()
    op.drop_table("sim_accounts")
    op.drop_index(op.f("ix_job_runs_job_started_at"), table_name="job_runs")
    op.drop_table("job_runs")
    op.drop_table("weekly_slots")
    op.drop_index(op.f("ix_orders_decision_id"), table_name="orders")
    op.drop_index(op.f("ix_orders_account_status"), table_name="orders")
    op.drop_table("orders")
    op.drop_index(op.f("ix_decision_events_decision_id"), table_name="decision_events")
    op.drop_table("decision_events")
    op.drop_index(op.f("ix_decisions_execute_at"), table_name="decisions")
    op.drop_index(op.f("ix_decisions_account_status"), table_name="decisions")
    op.drop_table("decisions")
    op.drop_index(op.f("ix_research_reports_account_sha256"), table_name="research_reports")
    op.drop_table("research_reports")
    op.drop_index("uq_position_records_open_account_symbol", table_name="position_records")
    op.drop_table("position_records")
    op.drop_table("accounts")


def _create_append_only_triggers() -> None:
    """Refuse UPDATE and DELETE on decision_events in the database itself."""
    if _dialect() == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION decision_events_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}';
            END;
            $$
            """
        )
        for name, when, each in (
            ("decision_events_no_update", "UPDATE", "ROW"),
            ("decision_events_no_delete", "DELETE", "ROW"),
            ("decision_events_no_truncate", "TRUNCATE", "STATEMENT"),
        ):
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {when} ON decision_events "
                f"FOR EACH {each} EXECUTE FUNCTION decision_events_append_only()"
            )
        return
    for name, when in (
        ("decision_events_no_update", "UPDATE"),
        ("decision_events_no_delete", "DELETE"),
    ):
        op.execute(
            f"CREATE TRIGGER {name} BEFORE {when} ON decision_events "
            f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
        )


def _drop_append_only_triggers() -> None:
    if _dialect() == "postgresql":
        for name in (
            "decision_events_no_update",
            "decision_events_no_delete",
            "decision_events_no_truncate",
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON decision_events")
        op.execute("DROP FUNCTION IF EXISTS decision_events_append_only()")
        return
    for name in ("decision_events_no_update", "decision_events_no_delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
