"""Errors grouped by what the operator must do about them.

Every error the project raises derives from :class:`RebalancerdError`; the CLI
maps each family to an exit code (SPEC §13): configuration problems stop with
78, usage problems with 2, everything else with 1. Foreign exceptions
(SQLAlchemy, alpaca-py, OS errors) are translated at the adapter that meets them.
"""

from __future__ import annotations


class RebalancerdError(Exception):
    """Base of every error raised on purpose by rebalancerd."""

    exit_code = 1


class ConfigError(RebalancerdError):
    """The configuration (or a file it names) is invalid: fix the file, then restart.

    The message names the file and the key so the operator can go straight there.
    """

    exit_code = 78

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None):
        self.source = source
        self.key = key
        parts = [p for p in (source, key) if p]
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class UsageError(RebalancerdError):
    """A command-line argument is wrong (unknown account, bad id)."""

    exit_code = 2


class InvalidTransition(RebalancerdError):
    """A decision was asked to move to a status its current status cannot reach."""


class NotFound(RebalancerdError):
    """A decision, account or order the caller named does not exist."""

    exit_code = 2


class StoreError(RebalancerdError):
    """The database failed (unreachable, locked too long, schema missing)."""


class BrokerError(RebalancerdError):
    """Base of broker failures."""


class TransientBrokerError(BrokerError):
    """Worth retrying: rate limits, 5xx, timeouts, dropped connections."""


class BrokerRejection(BrokerError):
    """The broker refused the request (4xx): record it, do not retry, carry on."""

    def __init__(self, message: str, *, code: str | None = None):
        self.code = code
        super().__init__(message)
