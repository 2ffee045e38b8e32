"""alpaca-py's TradingClient with a timeout on every request, and our retry policy.

alpaca-py sets no HTTP timeout, and its ``RESTClient._request`` retries 429 and
504 (``_retry_codes``) ``_retry`` times after a fixed ``_retry_wait`` of 3 s,
POSTs included, so an order whose 504 hid a success is sent again. Here its
retry loop is switched off and :class:`RetryPolicy` retries instead:
exponential backoff, ``Retry-After`` honoured, for idempotent requests only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from alpaca.common.exceptions import APIError
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.trading.client import TradingClient
from pydantic import ValidationError
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from rebalancerd.adapters.alpaca.errors import AlpacaTransientError, translate
from rebalancerd.errors import TransientBrokerError

T = TypeVar("T")

#: Exceptions met through alpaca-py that are translated to BrokerError.
FOREIGN = (APIError, requests.exceptions.RequestException, ValidationError)


class TimeoutTradingClient(TradingClient):
    """TradingClient with ``timeout=`` on every request and no retries of its own.

    ``RESTClient._one_request`` is the single place every request goes through
    (``self._session.request(method, url, **opts)``), so the timeout is added
    there; the retry loop in ``_request`` is disabled by ``_retry = 0`` and an
    empty ``_retry_codes`` (it then never raises its internal RetryException).
    """

    def __init__(
        self,
        api_key: str,
        secret_key: str,
        *,
        paper: bool,
        url_override: str | None,
        timeout: float,
    ) -> None:
        super().__init__(
            api_key=api_key,
            secret_key=secret_key,
            paper=paper,
            raw_data=False,
            url_override=url_override,
        )
        self._timeout = timeout
        self._retry = 0
        self._retry_codes = []

    def _one_request(self, method: str, url: str, opts: dict[str, Any], retry: int) -> Any:
        return super()._one_request(method, url, {**opts, "timeout": self._timeout}, 0)

    @property
    def endpoint(self) -> str:
        url = self._base_url
        return str(getattr(url, "value", url))


class TimeoutDataClient(StockHistoricalDataClient):
    """The market-data client with the same timeout and no retries of its own.

    Used only for the latest trade price that sizes an entry; ``url_override``
    is the account's ``base_url`` when one is set (a proxy, the test server).
    """

    def __init__(
        self, api_key: str, secret_key: str, *, url_override: str | None, timeout: float
    ) -> None:
        super().__init__(
            api_key=api_key, secret_key=secret_key, raw_data=False, url_override=url_override
        )
        self._timeout = timeout
        self._retry = 0
        self._retry_codes = []

    def _one_request(self, method: str, url: str, opts: dict[str, Any], retry: int) -> Any:
        return super()._one_request(method, url, {**opts, "timeout": self._timeout}, 0)


class RetryPolicy:
    """How often and how long to retry a transient failure."""

    def __init__(
        self,
        *,
        max_attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 60.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.max_attempts = max_attempts
        self.sleep = sleep
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._max_retry_after = max_retry_after

    def wait_seconds(self, attempt: int, error: BaseException | None) -> float:
        """Delay after failed attempt number ``attempt`` (1-based).

        The server's ``Retry-After`` when it sent one (capped), else
        ``backoff * 2 ** (attempt - 1)`` capped at ``max_backoff``.
        """
        if isinstance(error, AlpacaTransientError) and error.retry_after is not None:
            return min(error.retry_after, self._max_retry_after)
        return float(min(self._backoff * 2 ** (attempt - 1), self._max_backoff))

    def _tenacity_wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        return self.wait_seconds(state.attempt_number, error)

    @staticmethod
    def once(fn: Callable[[], T]) -> T:
        """One attempt, foreign exceptions translated to BrokerError."""
        try:
            return fn()
        except FOREIGN as exc:
            raise translate(exc) from exc

    def call(self, fn: Callable[[], T]) -> T:
        """An idempotent request, retried on TransientBrokerError."""
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._tenacity_wait,
            sleep=self.sleep,
            retry=retry_if_exception_type(TransientBrokerError),
            reraise=True,
        )
        result: T = retrying(self.once, fn)
        return result
