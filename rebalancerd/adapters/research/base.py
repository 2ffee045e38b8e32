"""What the research providers share: their error and the report record they return."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from rebalancerd.errors import RebalancerdError
from rebalancerd.ports import ResearchReport


class ResearchProviderError(RebalancerdError):
    """A research provider failed: the folder is missing, the command timed out or
    failed, the API returned an error. No report is used this run; nothing executes
    on its behalf."""


def require_aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return now


def make_report(account: str, source: str, text: str, now: datetime) -> ResearchReport:
    """A not-yet-stored report (``id=None``) with the SHA-256 of its UTF-8 text."""
    return ResearchReport(
        id=None,
        account=account,
        source=source,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        received_at=require_aware(now).astimezone(UTC),
        text=text,
    )
