"""Column types that behave the same on SQLite and PostgreSQL.

Money and timestamps are where the two engines differ most: SQLite has no
decimal type (its NUMERIC goes through float) and no time zones. These types
hide that, so the store sees exact ``Decimal`` values and aware UTC datetimes
whichever engine is behind it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, Numeric, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

#: Digits after the decimal point kept for money and quantities (Numeric(24, 9)).
DECIMAL_SCALE = 9
#: Total significant digits of the PostgreSQL column.
DECIMAL_PRECISION = 24

_QUANTUM = Decimal(1).scaleb(-DECIMAL_SCALE)
_LIMIT = Decimal(10) ** (DECIMAL_PRECISION - DECIMAL_SCALE)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware timestamp stored in UTC and read back as aware UTC.

    A naive datetime is refused on the way in: the project's rule is that every
    timestamp is aware, and guessing a zone here would silently shift times.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime refused (timestamps must be aware): {value!r}")
        utc = value.astimezone(UTC)
        # SQLite keeps no zone: store naive UTC text that sorts correctly.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def canonical_decimal(value: Decimal) -> Decimal:
    """The value without trailing fractional zeros and never in exponent form.

    PostgreSQL pads to the column scale (``1.500000000``) while SQLite keeps the
    text it was given; normalising both makes the engines indistinguishable.
    """
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def _checked_decimal(value: Any) -> Decimal:
    """Validate and round a bound value to the column's scale on both engines."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"expected a Decimal, got {type(value).__name__}")
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"non-finite decimal refused: {number}")
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -DECIMAL_SCALE:
        # PostgreSQL would round to the scale; do the same on SQLite.
        number = number.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)
    if abs(number) >= _LIMIT:
        raise ValueError(f"decimal out of range for Numeric({DECIMAL_PRECISION}, 9): {number}")
    return number


class ExactDecimal(TypeDecorator[Decimal]):
    """``Numeric(24, 9)`` on PostgreSQL, canonical text on SQLite; never a float.

    Values with more than nine fractional digits are rounded half-even to nine
    on both engines, so a value reads back identically from either.
    """

    impl = Numeric(DECIMAL_PRECISION, DECIMAL_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(64))
        return dialect.type_descriptor(Numeric(DECIMAL_PRECISION, DECIMAL_SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        number = _checked_decimal(value)
        return format(number, "f") if dialect.name == "sqlite" else number

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if isinstance(value, float):  # pragma: no cover - guarded by asdecimal
            raise TypeError("decimal column returned a float")
        return canonical_decimal(Decimal(value))

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal


def json_type() -> TypeEngine[Any]:
    """JSON on SQLite (stored as text), JSONB on PostgreSQL."""
    return JSON().with_variant(JSONB(), "postgresql")
