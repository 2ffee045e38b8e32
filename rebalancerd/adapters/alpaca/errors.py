"""Translate alpaca-py and ``requests`` failures into the project's broker errors.

alpaca-py raises :class:`alpaca.common.exceptions.APIError` for every HTTP error.
Its ``code``/``message`` properties call ``json.loads`` on the body and blow up on
a non-JSON one (a 504 gateway page, a plain-text 429), so this module never uses
them: it reads the status and body from the attached ``requests`` response and
parses the body defensively.

- 408, 429 and 5xx, timeouts and dropped connections become
  :class:`AlpacaTransientError` (a ``TransientBrokerError``) carrying the
  ``Retry-After`` delay when the server sent one;
- any other 4xx becomes :class:`AlpacaRejection` (a ``BrokerRejection``) whose
  ``code`` is Alpaca's error code (``"40310000"``) or, without one, the HTTP status.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from alpaca.common.exceptions import APIError
from pydantic import ValidationError

from rebalancerd.errors import BrokerError, BrokerRejection, TransientBrokerError

#: Alpaca's code for "client_order_id must be unique" (HTTP 422).
DUPLICATE_CLIENT_ORDER_ID = "40010001"
#: Alpaca's code for "insufficient qty available" / "insufficient buying power" (HTTP 403).
INSUFFICIENT = "40310000"

_TRANSIENT_STATUSES = frozenset({408, 429})
_MAX_MESSAGE = 300
_UNUSABLE_URL = (
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
)


class AlpacaTransientError(TransientBrokerError):
    """A retryable failure; ``retry_after`` is the server's requested delay in seconds."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ):
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


class AlpacaRejection(BrokerRejection):
    """Alpaca refused the request (4xx); ``status`` is the HTTP status."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        self.status = status
        super().__init__(message, code=code)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def parse_error_body(text: str | None) -> tuple[str | None, str | None]:
    """(Alpaca code, message) of an error body; (None, None) parts when absent."""
    if not text:
        return None, None
    try:
        data: Any = json.loads(text)
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    code = data.get("code")
    message = data.get("message")
    return (
        str(code) if code is not None else None,
        str(message) if message is not None else None,
    )


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def translate_api_error(exc: APIError) -> BrokerError:
    response: requests.Response | None = exc.response
    status: int | None = response.status_code if response is not None else None
    body = response.text if response is not None else str(exc)
    code, message = parse_error_body(body)
    if message is None:
        message = _short(body) if body and body.strip() else f"HTTP {status}"
    text = f"Alpaca HTTP {status}: {message}" if status is not None else f"Alpaca: {message}"
    if status is None or status in _TRANSIENT_STATUSES or status >= 500:
        retry_after = None
        if response is not None:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return AlpacaTransientError(text, status=status, retry_after=retry_after)
    return AlpacaRejection(message, code=code or str(status), status=status)


def translate(exc: BaseException) -> BrokerError:
    """The project error for a foreign exception met while talking to Alpaca."""
    if isinstance(exc, BrokerError):
        return exc
    if isinstance(exc, APIError):
        return translate_api_error(exc)
    if isinstance(exc, requests.exceptions.Timeout):
        return AlpacaTransientError(f"Alpaca request timed out: {type(exc).__name__}")
    if isinstance(exc, _UNUSABLE_URL):
        return BrokerError(f"Alpaca endpoint is not usable: {exc}")
    if isinstance(exc, requests.exceptions.RequestException):
        # ConnectionError (refused, reset, dropped), ChunkedEncodingError, a
        # garbled 200 body (JSONDecodeError): the request may or may not have
        # been applied; worth retrying (submit looks the order up first).
        return AlpacaTransientError(f"Alpaca connection failed: {type(exc).__name__}: {exc}")
    if isinstance(exc, ValidationError):
        return BrokerError(f"unexpected response shape from Alpaca: {_short(str(exc))}")
    return BrokerError(f"Alpaca call failed: {type(exc).__name__}: {exc}")


def is_duplicate_client_order_id(err: BrokerError) -> bool:
    if not isinstance(err, BrokerRejection):
        return False
    if err.code == DUPLICATE_CLIENT_ORDER_ID:
        return True
    return "client_order_id must be unique" in str(err).lower()


def is_not_found(err: BrokerError) -> bool:
    return isinstance(err, AlpacaRejection) and err.status == 404
