"""Turning parse and validation failures into one-line ConfigErrors.

The line names the file and the dotted key (``config/x.toml: accounts.dee-bot.
weekly.profit_take_pct: Input should be greater than 0``), the TOML line, or —
when the bad value came from the environment — the variable (and the ``.env``
file if it came from one).
"""

from __future__ import annotations

import re
import tomllib

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from rebalancerd.config.sources import LoadContext, Loc
from rebalancerd.errors import ConfigError

_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def toml_error(exc: tomllib.TOMLDecodeError, label: str) -> ConfigError:
    text = str(exc)
    match = _TOML_AT.search(text)
    if match is None:
        return ConfigError(text, source=label)
    message = text[: match.start()]
    return ConfigError(f"{message} (column {match[2]})", source=label, key=f"line {match[1]}")


def _message(err: ErrorDetails) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key (not part of the config schema; a typo?)"
    if err["type"] == "missing":
        return "required key is missing"
    msg = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg


def _describe(err: ErrorDetails, ctx: LoadContext) -> tuple[str | None, str | None, str]:
    """(source, key, message) of one validation error: the file and key, or the variable."""
    loc: Loc = tuple(str(part) for part in err["loc"])
    extra = err.get("ctx") or {}
    full = loc
    if err["type"] == "config_key" and "key" in extra:
        full = loc + tuple(str(extra["key"]).split("."))
    msg = _message(err)
    if full != loc:
        # Environment values that took part in a cross-field check: say so.
        related = sorted(
            {
                f"{o.variable}={ctx.applied.get(o.variable, '?')}"
                for at, o in ctx.origins.items()
                if at != full and at[:-1] == full[:-1]  # a sibling of the key at fault
            }
        )
        if related:
            msg += f" (with {', '.join(related)} applied)"
    origin = ctx.origins.get(full)
    if origin is None:
        return ctx.label, ".".join(full) or None, msg
    if full != loc:
        msg += f" (at {'.'.join(full)})"
    source = str(origin.env_file) if origin.env_file is not None else None
    return source, origin.variable, msg


def validation_error(exc: ValidationError, ctx: LoadContext) -> ConfigError:
    """The first error as one line; the same problem in several accounts counts once."""
    described = list(
        dict.fromkeys(
            _describe(err, ctx) for err in exc.errors(include_url=False, include_input=False)
        )
    )
    source, key, msg = described[0]
    if len(described) > 1:
        more = len(described) - 1
        msg += f" (and {more} more problem{'s' if more > 1 else ''})"
    return ConfigError(msg, source=source, key=key)
