"""The one way the server reads an integer a client sent (query parameters, headers, form fields,
cursors): ASCII digits only, bounded in length.

Python's ``int()`` takes far more than a wire format should: full-width and other Unicode digits,
underscores, surrounding whitespace, and thousands of digits (past 4,300 it raises, which reached
clients as a 500). ``str.isdigit()`` says yes to superscripts that ``int()`` refuses. Here a number
is 1 to 18 ASCII digits (always below 2**63, so every database takes it), with a ``-`` in front
where negative values are read at all.
"""

from __future__ import annotations

from filesapi.errors import InvalidRequest

__all__ = ["MAX_DIGITS", "decimal", "parse_int"]

MAX_DIGITS = 18


def decimal(text: str, *, max_digits: int = MAX_DIGITS) -> int | None:
    """``text`` as a non-negative integer when it is 1 to ``max_digits`` ASCII digits, else None."""
    if not 0 < len(text) <= max_digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def parse_int(name: str, text: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """A client's integer field, or ``InvalidRequest`` naming the field: an optional ``-`` and ASCII
    digits (surrounding blanks ignored), within ``minimum``..``maximum`` when given."""
    stripped = text.strip()
    negative = stripped.startswith("-")
    value = decimal(stripped[1:] if negative else stripped)
    if value is None:
        raise InvalidRequest(f"{name} must be an integer written in ASCII digits, got {text[:40]!r}.")
    value = -value if negative else value
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        low = "" if minimum is None else f" >= {minimum}"
        high = "" if maximum is None else f" <= {maximum}"
        joiner = " and" if low and high else ""
        raise InvalidRequest(f"{name} must be{low}{joiner}{high}, got {value}.")
    return value
