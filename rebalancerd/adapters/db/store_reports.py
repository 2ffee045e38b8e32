"""Research reports as received: the text, its hash, where it came from, and
whether it was used or rejected. Decisions made from a report point at its row.
"""

from __future__ import annotations

from dataclasses import replace

from rebalancerd.adapters.db.models import research_reports
from rebalancerd.adapters.db.store_base import StoreBase
from rebalancerd.ports import ResearchReport


class ReportStore(StoreBase):
    """Research reports of :class:`SqlStore`."""

    def save_report(
        self, report: ResearchReport, *, status: str, error: str | None = None
    ) -> ResearchReport:
        """Store a report (``status`` is ``parsed`` or ``rejected``); returns it with its id."""
        with self._tx("cannot store research report") as conn:
            self._ensure_account(conn, report.account, report.received_at)
            row_id = conn.execute(
                research_reports.insert()
                .values(
                    account=report.account,
                    source=report.source[:255],
                    sha256=report.sha256,
                    received_at=report.received_at,
                    status=status,
                    error=error,
                    text=report.text,
                )
                .returning(research_reports.c.id)
            ).scalar_one()
        return replace(report, id=int(row_id))
