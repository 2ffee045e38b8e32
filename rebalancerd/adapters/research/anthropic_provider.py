"""The Anthropic provider: ask Claude for the week's report (optional extra).

The ``anthropic`` package is imported when a source is built, never when this
module is imported, so the daemon runs without the extra installed; building
one without it raises :class:`~rebalancerd.errors.ConfigError` naming the
extra to install.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import SecretStr

from rebalancerd.adapters.research.base import ResearchProviderError, make_report, require_aware
from rebalancerd.errors import ConfigError
from rebalancerd.ports import ResearchReport

if TYPE_CHECKING:
    import anthropic

_MAX_MESSAGE = 300
#: ``stop_reason`` values that mean the answer is complete.
_COMPLETE = frozenset({"end_turn", "stop_sequence"})


class AnthropicResearchSource:
    """One Messages API call per report: the prompt is ``prompt_template`` with
    ``{context}`` replaced by ``context_provider(account)`` (and ``{account}`` by
    the account name; other braces are left alone, so JSON examples are safe).

    The SDK retries 408/409/429/5xx and connection errors ``max_retries`` times
    with backoff; what still fails raises :class:`ResearchProviderError` (the
    API key never appears in messages or ``repr``). An answer cut off at
    ``max_tokens`` or refused is an error too: a truncated report could have
    lost its exits. An answer without text is ``None`` (``last_skip_reason``).
    """

    def __init__(
        self,
        api_key: SecretStr | str,
        model: str,
        prompt_template: str,
        context_provider: Callable[[str], str],
        base_url: str | None = None,
        timeout: float = 120,
        *,
        max_retries: int = 2,
        max_tokens: int = 8192,
    ) -> None:
        try:
            import anthropic  # noqa: F401  (fail at configuration time, not on Saturday)
        except ImportError as exc:
            raise ConfigError(
                "the anthropic research provider needs the 'anthropic' package: "
                "pip install 'rebalancerd[anthropic]'",
                key="provider",
            ) from exc
        secret = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        if not secret.get_secret_value():
            raise ConfigError("the Anthropic API key is empty", key="api_key")
        if not model:
            raise ConfigError("must not be empty", key="model")
        if "{context}" not in prompt_template:
            raise ConfigError("must contain {context}", key="prompt_template")
        self._api_key = secret
        self.model = model
        self.prompt_template = prompt_template
        self.context_provider = context_provider
        self.base_url = base_url
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_tokens = max_tokens
        self.last_skip_reason: str | None = None
        self._client: anthropic.Anthropic | None = None

    def __repr__(self) -> str:
        return f"AnthropicResearchSource(model={self.model!r}, base_url={self.base_url!r})"

    def client(self) -> anthropic.Anthropic:
        if self._client is None:
            import anthropic

            self._client = anthropic.Anthropic(
                api_key=self._api_key.get_secret_value(),
                base_url=self.base_url,
                timeout=self.timeout,
                max_retries=self.max_retries,
            )
        return self._client

    def render_prompt(self, account: str) -> str:
        context = self.context_provider(account)
        return self.prompt_template.replace("{account}", account).replace("{context}", context)

    def latest_report(self, account: str, *, now: datetime) -> ResearchReport | None:
        import anthropic

        require_aware(now)
        self.last_skip_reason = None
        prompt = self.render_prompt(account)
        where = self.base_url or "the Anthropic API"
        try:
            message = self.client().messages.create(
                model=self.model,
                max_tokens=self.max_tokens,
                messages=[{"role": "user", "content": prompt}],
            )
        except anthropic.APIStatusError as exc:
            raise ResearchProviderError(
                f"{where} answered HTTP {exc.status_code} for model {self.model!r}: "
                f"{_short(exc.message)}"
            ) from None
        except anthropic.APITimeoutError:
            raise ResearchProviderError(
                f"{where} did not answer within {self.timeout:g} s (model {self.model!r})"
            ) from None
        except anthropic.APIConnectionError as exc:
            raise ResearchProviderError(f"cannot reach {where}: {_short(str(exc))}") from None
        except anthropic.AnthropicError as exc:
            raise ResearchProviderError(f"{where} request failed: {_short(str(exc))}") from None
        if message.stop_reason not in _COMPLETE and message.stop_reason is not None:
            raise ResearchProviderError(
                f"{where} stopped the report early (stop_reason={message.stop_reason!r}; "
                f"max_tokens={self.max_tokens}): not used"
            )
        text = "".join(
            block.text for block in message.content if isinstance(block, anthropic.types.TextBlock)
        )
        if not text.strip():
            self.last_skip_reason = f"model {self.model!r} returned no text"
            return None
        return make_report(account, f"anthropic:{self.model}", text, now)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"
