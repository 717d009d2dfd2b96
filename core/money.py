"""Money is an integer of fen everywhere (STYLE 2.5); yuan appear only at the edges, as Decimal."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

FEN_PER_YUAN = 100


def yuan_to_fen(yuan: Decimal | int | str) -> int:
    """Exact: '1234.56' → 123456. More than two decimals is refused (ValueError), never rounded."""
    try:
        amount = Decimal(str(yuan).strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError("not an amount") from None
    if not amount.is_finite():
        raise ValueError("not an amount")
    fen = amount * FEN_PER_YUAN
    if fen != fen.to_integral_value():
        raise ValueError("more than two decimals")
    return int(fen)


def fen_to_yuan(fen: int) -> Decimal:
    return Decimal(fen).scaleb(-2)


def format_yuan(fen: int) -> str:
    """¥1,234.56 — with the sign before the symbol for negative amounts."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), FEN_PER_YUAN)
    return f"{sign}¥{whole:,}.{cents:02d}"
