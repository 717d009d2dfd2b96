"""Money is an integer of fen everywhere; yuan appear only at the edges, as Decimal."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

FEN_PER_YUAN = 100
# The largest amount any form, import or API takes: beyond any budget or instrument, and far inside a
# BIGINT of fen. Larger input is a typing error, refused before any arithmetic on it.
MAX_FEN = 10**13
MAX_YUAN = Decimal(MAX_FEN) / FEN_PER_YUAN
CENT = Decimal("0.01")


class AmountTooLarge(ValueError):
    """Above MAX_YUAN (or below -MAX_YUAN)."""


class TooManyDecimals(ValueError):
    """Fractions of a fen."""


def yuan_to_fen(yuan: Decimal | int | str) -> int:
    """Exact: '1234.56' → 123456. Not a number is refused (ValueError); more than two decimals too
    (TooManyDecimals), never rounded; an amount beyond MAX_YUAN either way (AmountTooLarge), before any
    arithmetic on it."""
    try:
        amount = Decimal(str(yuan).strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError("not an amount") from None
    if not amount.is_finite():
        raise ValueError("not an amount")
    if amount.copy_abs() > MAX_YUAN:  # compared exactly, whatever its exponent
        raise AmountTooLarge("too large")
    if amount != amount.quantize(CENT):
        raise TooManyDecimals("more than two decimals")
    return int(amount * FEN_PER_YUAN)


def fen_to_yuan(fen: int) -> Decimal:
    return Decimal(fen).scaleb(-2)


def format_yuan(fen: int) -> str:
    """¥1,234.56 — with the sign before the symbol for negative amounts."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), FEN_PER_YUAN)
    return f"{sign}¥{whole:,}.{cents:02d}"
