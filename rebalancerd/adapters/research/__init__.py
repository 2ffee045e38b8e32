"""Research report providers (SPEC §6, §13 ``[accounts.<name>.research]``).

Each implements :class:`rebalancerd.ports.ResearchSource`:
``latest_report(account, *, now) -> ResearchReport | None``. A ``None`` means
"no usable report this week" and the provider's ``last_skip_reason`` says why;
a failure (missing folder, command timeout, API error) raises
:class:`ResearchProviderError`. Reports come back with ``id=None`` (the store
assigns ids), the SHA-256 of their text, a ``source`` description
(``folder:/path/file.md``, ``command:python gen.py``, ``anthropic:<model>``)
and ``received_at = now``. Parsing is the caller's job
(:func:`rebalancerd.domain.report_parser.parse_report`).

- :class:`FolderResearchSource`: the newest file in a drop folder;
- :class:`CommandResearchSource`: an external command, context on stdin,
  report on stdout;
- :class:`AnthropicResearchSource`: the Anthropic Messages API (needs the
  optional ``anthropic`` package, imported only when this source is built).
"""

from rebalancerd.adapters.research.anthropic_provider import AnthropicResearchSource
from rebalancerd.adapters.research.base import ResearchProviderError, make_report
from rebalancerd.adapters.research.command import CommandResearchSource
from rebalancerd.adapters.research.folder import FolderResearchSource

__all__ = [
    "AnthropicResearchSource",
    "CommandResearchSource",
    "FolderResearchSource",
    "ResearchProviderError",
    "make_report",
]
