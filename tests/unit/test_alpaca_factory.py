"""build_alpaca_broker: keys from the environment, endpoints, retry delays (no network)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from rebalancerd.adapters.alpaca import LIVE_URL, PAPER_URL, AlpacaBroker, build_alpaca_broker
from rebalancerd.adapters.alpaca.errors import AlpacaTransientError
from rebalancerd.errors import ConfigError

ENV = {"APCA_API_KEY_ID": "PKTESTKEYVALUE", "APCA_API_SECRET_KEY": "s3cr3t-value"}


def test_paper_by_default() -> None:
    broker = build_alpaca_broker("dee-bot", environ=ENV)
    assert broker.endpoint == PAPER_URL
    assert broker.paper


def test_live_only_when_asked() -> None:
    broker = build_alpaca_broker("dee-bot", live=True, environ=ENV)
    assert broker.endpoint == LIVE_URL
    assert not broker.paper
    assert "LIVE" in repr(broker) and "s3cr3t" not in repr(broker)


def test_base_url_overrides_both() -> None:
    for live in (False, True):
        broker = build_alpaca_broker(
            "dee-bot", live=live, base_url="http://127.0.0.1:9999/", environ=ENV
        )
        assert broker.endpoint == "http://127.0.0.1:9999"


def test_live_base_url_needs_live_true() -> None:
    with pytest.raises(ConfigError) as info:
        build_alpaca_broker("dee-bot", base_url="https://api.alpaca.markets/", environ=ENV)
    assert info.value.key == "accounts.dee-bot.base_url"


def test_bad_base_url() -> None:
    with pytest.raises(ConfigError) as info:
        build_alpaca_broker("dee-bot", base_url="paper-api.alpaca.markets", environ=ENV)
    assert info.value.key == "accounts.dee-bot.base_url"


def test_custom_variable_names_and_secret_values() -> None:
    environ = {"DEE_KEY": SecretStr("k"), "DEE_SECRET": SecretStr("s")}
    broker = build_alpaca_broker("dee-bot", key_env="DEE_KEY", secret_env="DEE_SECRET",
                                 environ=environ)  # fmt: skip
    assert isinstance(broker, AlpacaBroker)


@pytest.mark.parametrize(
    ("environ", "var", "key"),
    [
        ({"APCA_API_SECRET_KEY": "s3cr3t-value"}, "APCA_API_KEY_ID", "key_env"),
        ({"APCA_API_KEY_ID": "PKTESTKEYVALUE", "APCA_API_SECRET_KEY": "  "},
         "APCA_API_SECRET_KEY", "secret_env"),
    ],
)  # fmt: skip
def test_missing_key_names_the_variable_not_the_value(
    environ: dict[str, str], var: str, key: str
) -> None:
    with pytest.raises(ConfigError) as info:
        build_alpaca_broker("dee-bot", environ=environ)
    assert info.value.key == f"accounts.dee-bot.{key}"
    assert var in str(info.value)
    assert "PKTESTKEYVALUE" not in str(info.value) and "s3cr3t" not in str(info.value)
    assert info.value.exit_code == 78


def test_wait_seconds_exponential_capped_and_retry_after() -> None:
    broker = AlpacaBroker("k", "s", backoff=0.5, max_backoff=3.0, max_retry_after=10.0)
    assert [broker.wait_seconds(n, None) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert broker.wait_seconds(1, AlpacaTransientError("x", retry_after=7)) == 7.0
    assert broker.wait_seconds(1, AlpacaTransientError("x", retry_after=100)) == 10.0


def test_alpaca_py_retry_and_timeout_settings() -> None:
    broker = AlpacaBroker("k", "s", timeout=2.5)
    client = broker._client
    assert (client._retry, client._retry_codes, client._timeout) == (0, [], 2.5)
    with pytest.raises(ValueError):
        AlpacaBroker("k", "s", max_attempts=0)
