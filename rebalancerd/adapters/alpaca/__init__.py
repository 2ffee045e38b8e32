"""Alpaca broker adapter: :class:`AlpacaBroker` and its factory.

Composition calls :func:`build_alpaca_broker` with the account's config values
as plain arguments (this package does not import the settings module)::

    broker = build_alpaca_broker(
        name,
        key_env=account.key_env,
        secret_env=account.secret_env,
        live=account.live,
        base_url=account.base_url,
        environ=os.environ,          # or any mapping of secrets (str or SecretStr)
    )
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from rebalancerd.adapters.alpaca.activities import FillHistory, opening_times
from rebalancerd.adapters.alpaca.broker import AlpacaBroker
from rebalancerd.adapters.alpaca.client import RetryPolicy, TimeoutTradingClient
from rebalancerd.adapters.alpaca.errors import AlpacaRejection, AlpacaTransientError
from rebalancerd.errors import ConfigError

PAPER_URL = "https://paper-api.alpaca.markets"
LIVE_URL = "https://api.alpaca.markets"
DEFAULT_KEY_ENV = "APCA_API_KEY_ID"
DEFAULT_SECRET_ENV = "APCA_API_SECRET_KEY"

_URL = re.compile(r"^https?://[^\s/]+")


def _secret(environ: Mapping[str, Any], name: str) -> str | None:
    value = environ.get(name)
    if value is None:
        return None
    reveal: Callable[[], Any] | None = getattr(value, "get_secret_value", None)
    text = str(reveal() if reveal is not None else value).strip()
    return text or None


def endpoint(*, live: bool, base_url: str | None) -> str:
    """The URL the account talks to: ``base_url`` if set, else paper unless live."""
    if base_url:
        return base_url.strip().rstrip("/")
    return LIVE_URL if live else PAPER_URL


def build_alpaca_broker(
    name: str,
    *,
    environ: Mapping[str, Any],
    key_env: str = DEFAULT_KEY_ENV,
    secret_env: str = DEFAULT_SECRET_ENV,
    live: bool = False,
    base_url: str | None = None,
    timeout: float = 10.0,
    max_attempts: int = 4,
) -> AlpacaBroker:
    """An AlpacaBroker for account ``name`` with keys from ``environ``.

    Raises ConfigError naming the variable (never its value) when a key is
    missing, and refuses a ``base_url`` at the live endpoint on an account that
    is not ``live = true`` (paper unless live is set explicitly).
    """
    api_key = _secret(environ, key_env)
    if api_key is None:
        raise ConfigError(
            f"environment variable {key_env} (Alpaca API key id of account {name!r}) is not set",
            key=f"accounts.{name}.key_env",
        )
    secret_key = _secret(environ, secret_env)
    if secret_key is None:
        raise ConfigError(
            f"environment variable {secret_env} (Alpaca secret key of account {name!r}) is not set",
            key=f"accounts.{name}.secret_env",
        )
    if base_url is not None and _URL.match(base_url.strip()) is None:
        raise ConfigError(f"{base_url!r} is not an http(s) URL", key=f"accounts.{name}.base_url")
    url = endpoint(live=live, base_url=base_url)
    if not live and url.rstrip("/").lower() == LIVE_URL:
        raise ConfigError(
            f"base_url is Alpaca's live endpoint but account {name!r} is not live = true",
            key=f"accounts.{name}.base_url",
        )
    return AlpacaBroker(
        api_key,
        secret_key,
        paper=not live,
        base_url=url,
        timeout=timeout,
        max_attempts=max_attempts,
    )


__all__ = [
    "DEFAULT_KEY_ENV",
    "DEFAULT_SECRET_ENV",
    "LIVE_URL",
    "PAPER_URL",
    "AlpacaBroker",
    "AlpacaRejection",
    "AlpacaTransientError",
    "FillHistory",
    "RetryPolicy",
    "TimeoutTradingClient",
    "build_alpaca_broker",
    "endpoint",
    "opening_times",
]
