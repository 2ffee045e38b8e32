"""The portfolio context handed to the research generator (SPEC §6, "context out").

Built from the same views the CLI shows, so what the research sees is what
``rebalancerd positions`` and ``rebalancerd caps`` show the operator: every
position with its age, P&L, weight, catalyst and the rules that flag it, the
account's equity and cash, and the exit slots left for the coming execution.
"""

from __future__ import annotations

from datetime import datetime

from rebalancerd.ports import Store
from rebalancerd.services.accounts import AccountContext, read_account
from rebalancerd.services.context_render import PortfolioContext, PositionContext
from rebalancerd.services.views import caps_view, positions_view


def build_context(ctx: AccountContext, store: Store, now: datetime) -> PortfolioContext:
    state = read_account(ctx, store, now)  # once: the rows below reuse it
    rows = positions_view(ctx, store, now, state)
    _, upcoming = caps_view(ctx, store, now)
    positions = tuple(
        PositionContext(
            symbol=row["symbol"],
            qty=row["qty"],
            avg_entry_price=row["avg_entry_price"],
            current_price=row["current_price"],
            plpc=row["plpc"],
            weight=row["weight"],
            age_days=row["age_days"],
            catalyst=row["catalyst"],
            catalyst_date=row["catalyst_date"],
            flags=tuple((f["rule"], f["detail"]) for f in row["flags"]),
        )
        for row in rows
    )
    return PortfolioContext(
        account=ctx.name,
        as_of=now.astimezone(ctx.tz),
        equity=state.portfolio.equity,
        cash=state.snapshot.cash,
        exits_used_this_week=upcoming.used,
        slots_left=upcoming.left,
        cap=upcoming.cap,
        positions=positions,
    )
