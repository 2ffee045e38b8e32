"""Building blocks shared by the config models: value types, errors, file look-up.

Units as in the file (SPEC §13): percentages are percent numbers (``20`` = 20%),
fractions are decimals (``0.5``).
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

from rebalancerd.config.sources import current_context

#: A percent number, > 0 and without an upper bound (a gain can exceed 100%).
Percent = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
#: A percent number of something that cannot exceed the whole: (0, 100].
Percent100 = Annotated[Decimal, Field(gt=0, le=100, allow_inf_nan=False)]
#: A fraction of a quantity: (0, 1].
Fraction = Annotated[Decimal, Field(gt=0, le=1, allow_inf_nan=False)]
#: The name of an environment variable (where a secret is read from).
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


def key_error(key: str, message: str) -> PydanticCustomError:
    """A cross-field error attributed to ``key`` (dotted, relative to the model)."""
    template = message.replace("{", "(").replace("}", ")")
    return PydanticCustomError("config_key", template, {"key": key})


class ConfigModel(BaseModel):
    """Unknown keys are errors (a typo must not be silently ignored); values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _candidates(value: Path) -> list[Path]:
    """Relative paths: the working directory first, then the config file's directory."""
    value = value.expanduser()
    if value.is_absolute():
        return [Path(os.path.normpath(value))]
    found = [Path(os.path.normpath(Path.cwd() / value))]
    ctx = current_context()
    if ctx is not None:
        other = Path(os.path.normpath(ctx.config_dir / value))
        if other != found[0]:
            found.append(other)
    return found


def resolve_existing(value: Path, *, directory: bool) -> Path:
    """The first existing candidate for ``value``, absolute; an error naming where it looked."""
    candidates = _candidates(value)
    for candidate in candidates:
        if candidate.exists():
            if directory and not candidate.is_dir():
                raise ValueError(f"{candidate} is not a directory")
            if not directory and not candidate.is_file():
                raise ValueError(f"{candidate} is not a regular file")
            return candidate
    looked = " or ".join(str(c) for c in candidates)
    kind = "directory" if directory else "file"
    raise ValueError(f"{kind} not found: {looked}")
