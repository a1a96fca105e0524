"""Exact money. Amounts are integers of the smallest unit, a micro-credit (1e-6 credit).

Operators and users see decimal credits (`"0.5"`); the database and all arithmetic see ints.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MICROS_PER_CREDIT = 1_000_000
#: Digits before or after the point beyond which a text is no amount anyone means (`"1e999999"`); refused
#: before any arithmetic, which would overflow the decimal context.
_MAX_EXPONENT = 30


def parse_credits(value: str | int | Decimal) -> int:
    """Decimal credits to micro-credits: `parse_credits("0.5") == 500_000`.

    Raises ValueError for anything that is not an exact amount with at most six decimals.
    """
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {value!r}") from exc
    if not amount.is_finite() or abs(amount.adjusted()) > _MAX_EXPONENT:
        raise ValueError(f"not an amount of credits: {value!r}")
    micros = amount * MICROS_PER_CREDIT
    if micros != micros.to_integral_value():
        raise ValueError(f"not an amount with at most 6 decimals: {value!r}")
    return int(micros)


def format_credits(micros: int) -> str:
    """Micro-credits to a decimal string without trailing zeros: `format_credits(1_500_000) == "1.5"`."""
    text = f"{Decimal(micros) / MICROS_PER_CREDIT:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
